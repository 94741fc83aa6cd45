"""The integrator's kit: the lanesight-api wheel and the @lanesight/api npm package are
built from protos/, installed where the services' runtime is not, and the examples of
docs/integrating.md run with them against a real lane agent and fusion."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, ServiceProcess, start_service_process

EXAMPLES = REPO_ROOT / "examples" / "integrating"
NODE_MODULES = REPO_ROOT / "node_modules"


@pytest.fixture(scope="module")
def lane(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real fusion and a real lane agent (no hardware, no vision) feeding it."""
    work = tmp_path_factory.mktemp("lane")
    env = {
        "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
        "LANESIGHT_DEVICE__VISION_LINK": "false",
    }
    procs: list[ServiceProcess] = []
    try:
        fusion = start_service_process("fusion", work, env=env)
        procs.append(fusion)
        device = start_service_process(
            "device", work, env={**env, "LANESIGHT_PEERS__FUSION": fusion.address}
        )
        procs.append(device)
        yield {"lane": device.address, "fusion": fusion.address}
    finally:
        for proc in reversed(procs):
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait()


def check_example_output(stdout: str) -> None:
    out = json.loads(stdout)
    assert out["lane"] == "store-1/lane-1"
    assert len(out["sequences"]) == 12 and out["resubmit_same_sequences"] is True
    assert out["invalid"]["code"] == "INVALID_ARGUMENT"
    assert "item_added.unit_price.currency_code" in out["invalid"]["details"]
    assert out["alert"]["type"] == "ALERT_TYPE_POS_EXCEPTION"
    assert out["alert"]["kind"] == "POS_EXCEPTION_KIND_NO_SALE_DRAWER_OPEN"
    assert out["alert"]["escalation"] == "ESCALATION_ATTENDANT"
    assert out["resolved_state"] == "ALERT_STATE_RESOLVED"


def _link_runtime_of(distributions: list[str], into: Path) -> None:
    """Symlink the installed distributions (and what they require) into a folder: an
    offline stand-in for `pip install grpcio protobuf` in the fresh environment."""
    into.mkdir()
    todo, seen = list(distributions), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        dist = importlib.metadata.distribution(name)
        base = Path(str(dist.locate_file("")))
        for top in {f.parts[0] for f in dist.files or []} - {"..", "__pycache__"}:
            if not (into / top).exists():
                (into / top).symlink_to(base / top)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0])


def test_python_wheel_holds_only_the_stubs_and_runs_the_example(tmp_path, lane):
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, str(REPO_ROOT / "packages" / "lanesight-api" / "build_wheel.py")]
        + ["--out", str(dist)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    wheel = Path(built.stdout.strip())
    names = subprocess.run(
        [sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True
    ).stdout
    files = re.findall(r"^(\S+)\s", names, re.MULTILINE)[1:]
    code = [f for f in files if not f.startswith("lanesight_api-")]
    assert code and all(f.startswith("lanesight/v1/") for f in code), code
    assert "lanesight/v1/fusion_pb2.pyi" in code and "lanesight/v1/py.typed" in code
    metadata = subprocess.run(
        [sys.executable, "-c", f"import zipfile; z = zipfile.ZipFile({str(wheel)!r}); "
         "print(z.read([n for n in z.namelist() if n.endswith('METADATA')][0]).decode())"],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    requires = re.findall(r"^Requires-Dist: ([a-z0-9-]+)", metadata, re.MULTILINE)
    assert requires == ["grpcio", "protobuf"]

    # A fresh environment: the wheel, and grpcio and protobuf beside it; nothing else.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    _link_runtime_of(["grpcio", "protobuf"], tmp_path / "runtime")
    (site / "runtime.pth").write_text(f"{tmp_path / 'runtime'}\n", encoding="utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    subprocess.run([*pip, "check"], check=True, capture_output=True)
    isolated = subprocess.run(
        [str(python), "-c",
         "import importlib.util, lanesight.v1.fusion_pb2_grpc as m; print(m.__file__); "
         "print([n for n in ('cv2', 'numpy', 'onnxruntime', 'pydantic') "
         "if importlib.util.find_spec(n)])"],
        capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    assert isolated.returncode == 0, isolated.stderr
    location, runtime = isolated.stdout.splitlines()
    assert location.startswith(str(venv)) and runtime == "[]"

    example = subprocess.run(
        [str(python), str(EXAMPLES / "pos_client.py"), "--lane", lane["lane"]]
        + ["--fusion", lane["fusion"]],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
    )
    assert example.returncode == 0, example.stderr
    check_example_output(example.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_npm_package_installs_offline_and_runs_the_example(tmp_path, lane):
    assert (NODE_MODULES / "@grpc" / "grpc-js").exists(), "run `make setup` (npm install) first"
    built = subprocess.run(
        ["node", str(REPO_ROOT / "packages" / "lanesight-api-js" / "build.js"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    tarball = Path(built.stdout.strip().splitlines()[-1])
    app = tmp_path / "pos"
    app.mkdir()
    (app / "package.json").write_text('{"name": "pos", "private": true}\n', encoding="utf-8")
    installed = subprocess.run(
        ["npm", "install", "--offline", "--no-audit", "--no-fund", "--legacy-peer-deps",
         "--loglevel=error", str(tarball)],
        cwd=app, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    package = app / "node_modules" / "@lanesight" / "api"
    assert (package / "protos" / "lanesight" / "v1" / "fusion.proto").exists()
    assert json.loads((package / "package.json").read_text())["version"] == "0.1.0"
    # The peers (@grpc/grpc-js, @grpc/proto-loader) come from the repository's node_modules.
    env = {**os.environ, "NODE_PATH": f"{app / 'node_modules'}{os.pathsep}{NODE_MODULES}"}
    example = subprocess.run(
        ["node", str(EXAMPLES / "pos_client.js"), "--lane", lane["lane"]]
        + ["--fusion", lane["fusion"]],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert example.returncode == 0, example.stderr
    check_example_output(example.stdout)
