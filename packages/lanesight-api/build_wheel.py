#!/usr/bin/env python3
"""Build the lanesight-api wheel: the lanesight.v1 gRPC stubs (with .pyi) and nothing else.

    .venv/bin/python packages/lanesight-api/build_wheel.py --out dist/

For POS integrators and attendant apps in Python: it depends on grpcio and protobuf only
(no opencv, onnxruntime or numpy). It holds the same modules as the full lanesight
package's lanesight.v1 (generated the same way as `make stubs`), so install one or the
other in an environment, not both. Offline: setuptools and grpcio-tools come from the
environment running this (no build isolation, no downloads).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "lanesight-api"
version = "{version}"
description = "lanesight's gRPC API for Python: the lanesight.v1 stubs and types only"
readme = "README.md"
requires-python = ">=3.9"
license = "Apache-2.0"
dependencies = ["grpcio>={grpcio}", "protobuf>={protobuf}"]

[tool.setuptools.packages.find]
where = ["src"]
include = ["lanesight.v1"]
namespaces = true

[tool.setuptools.package-data]
"lanesight.v1" = ["*.pyi", "py.typed"]
"""


def generate_stubs(target: Path) -> Path:
    """protoc's Python, .pyi and gRPC output for protos/ (what `make stubs` runs)."""
    protos = sorted(str(p.relative_to(REPO / "protos")) for p in (REPO / "protos").rglob("*.proto"))
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(REPO / "protos"),
            f"--python_out={target}",
            f"--pyi_out={target}",
            f"--grpc_python_out={target}",
            *protos,
        ],
        check=True,
    )
    package = target / "lanesight" / "v1"
    for pyi in package.glob("*.pyi"):  # as `make stubs`: enum fields take ints too
        text = pyi.read_text(encoding="utf-8")
        pyi.write_text(
            re.sub(r"_Union\[([A-Za-z0-9_.]+), str\]", r"_Union[\1, str, int]", text),
            encoding="utf-8",
        )
    (package / "__init__.py").write_text(
        '"""lanesight.v1: generated gRPC stubs (lanesight-api); see docs/integrating.md."""\n',
        encoding="utf-8",
    )
    (package / "py.typed").write_text("", encoding="utf-8")
    return package


def runtime_floors(package: Path) -> tuple[str, str]:
    """The least grpcio and protobuf the generated code accepts (it checks at import)."""
    grpc_file = next(package.glob("*_pb2_grpc.py")).read_text(encoding="utf-8")
    grpcio = re.search(r"GRPC_GENERATED_VERSION = '([0-9.]+)'", grpc_file)
    pb_file = next(package.glob("*_pb2.py")).read_text(encoding="utf-8")
    protobuf = re.search(r"Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+),", pb_file)
    if grpcio is None or protobuf is None:
        raise SystemExit("cannot read the generated code's runtime versions")
    return grpcio.group(1), ".".join(protobuf.groups())


def build(out: Path) -> Path:
    """Build the wheel into out; returns its path."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "version"
    ]
    with tempfile.TemporaryDirectory(prefix="lanesight-api-") as tmp:
        stage = Path(tmp)
        package = generate_stubs(stage / "src")
        grpcio, protobuf = runtime_floors(package)
        (stage / "pyproject.toml").write_text(
            PYPROJECT.format(version=version, grpcio=grpcio, protobuf=protobuf), encoding="utf-8"
        )
        shutil.copy(HERE / "README.md", stage / "README.md")
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--wheel-dir",
                str(out),
                str(stage),
            ],
            check=True,
        )
    return next(out.glob(f"lanesight_api-{version}-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "dist"), help="folder for the wheel")
    args = parser.parse_args(argv)
    print(build(Path(args.out).resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
