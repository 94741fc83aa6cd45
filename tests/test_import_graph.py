"""The import graph of the lanesight package, read from the source (ast; nothing is imported)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "services"
RUNTIME = ("common", "device", "vision", "fusion", "reporting")
SERVICES = ("device", "vision", "fusion", "reporting", "demo", "simulation")
NOT_AT_RUN_TIME = ("lanesight.simulation", "lanesight.demo", "training")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("lanesight", *parts))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, module: str, is_package: bool, top_level: bool) -> set[str]:
    """Modules named by import statements; top_level: only those run on import, outside
    functions and `if TYPE_CHECKING:` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if top_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return
        if top_level and isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            found.add(base)
            # `from lanesight.fusion import events` imports the module lanesight.fusion.events.
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@cache
def _graph(top_level: bool) -> dict[str, set[str]]:
    """Module -> the lanesight modules (and other top-level names) it imports."""
    sources = {
        _module_name(path): path
        for path in SOURCE.rglob("*.py")
        if "v1" not in path.relative_to(SOURCE).parts[:1]
    }
    graph: dict[str, set[str]] = {}
    for name, path in sources.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        named = _imports(tree, name, path.name == "__init__.py", top_level)
        graph[name] = {
            target
            for target in named
            if target in sources or not target.startswith("lanesight.")
            # keep only modules: `from lanesight.fusion.events import Money` names no module
        }
    assert len(graph) > 100, "the walk found the source"
    return graph


def _imports_of(package: str, top_level: bool = False) -> dict[str, set[str]]:
    return {
        module: targets
        for module, targets in _graph(top_level).items()
        if module == f"lanesight.{package}" or module.startswith(f"lanesight.{package}.")
    }


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in _imports_of(package).items()
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    )


def test_common_imports_no_service():
    forbidden = tuple(f"lanesight.{name}" for name in SERVICES)
    assert _offenders("common", forbidden) == []


@pytest.mark.parametrize("package", RUNTIME)
def test_runtime_packages_import_no_simulation_demo_or_training(package):
    assert _offenders(package, NOT_AT_RUN_TIME) == []


def test_nothing_imports_the_old_package_name_services():
    offenders = [
        f"{module} imports {target}"
        for module, targets in _graph(False).items()
        for target in targets
        if target == "services" or target.startswith("services.")
    ]
    for path in [*SOURCE.parent.glob("tests/**/*.py"), *SOURCE.parent.glob("benchmarks/*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        offenders += [
            f"{path.name} imports {target}"
            for target in _imports(tree, "tests.x", False, top_level=False)
            if target == "services" or target.startswith("services.")
        ]
    assert offenders == []


def test_no_package_imports_another_packages_private_names():
    """The demo and simulation use the services' public names only (and so does everyone)."""
    offenders = []
    for path in SOURCE.rglob("*.py"):
        package = path.relative_to(SOURCE).parts[0]
        if package == "v1":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "lanesight."
            ):
                continue
            target = (node.module or "").split(".")[1]
            offenders += [
                f"{_module_name(path)} imports {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and target != package
            ]
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles_at_module_level():
    graph = {
        module: {t for t in targets if t.startswith("lanesight.") and t != module}
        for module, targets in _graph(top_level=True).items()
    }
    # A package's __init__ importing its own submodules (a facade) is not a loop.
    for module, targets in graph.items():
        if (SOURCE / Path(*module.split(".")[1:]) / "__init__.py").exists():
            graph[module] = {t for t in targets if not t.startswith(module + ".")}
    assert _cycles(graph) == []


def test_the_walk_sees_imports_at_every_level():
    # simulation imports fusion at module level, demo.cli imports demo.main in a function.
    assert _offenders("simulation", ("lanesight.fusion",))
    assert "lanesight.demo.main" in _imports_of("demo")["lanesight.demo.cli"]
    assert "lanesight.demo.main" not in _imports_of("demo", top_level=True)["lanesight.demo.cli"]
    # a TYPE_CHECKING import is not a module-level edge
    assert "lanesight.fusion.app" not in _graph(top_level=True)["lanesight.fusion.servicer"]


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
