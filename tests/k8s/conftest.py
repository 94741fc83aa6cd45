"""Render every kustomize overlay once per session (kubectl carries kustomize)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

K8S = REPO_ROOT / "k8s"
OVERLAYS = ("dev", "store-edge", "gpu")


def kubectl() -> str | None:
    """kubectl on PATH (or Debian's /usr/bin/kubectl)."""
    return shutil.which("kubectl") or (
        "/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None
    )


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """overlay name -> the documents `kubectl kustomize k8s/overlays/<name>` renders."""
    binary = kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed: it renders the kustomize overlays")
    out: dict[str, list[dict]] = {}
    for overlay in OVERLAYS:
        result = subprocess.run(
            [binary, "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"kustomize {overlay} failed:\n{result.stderr}"
        out[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out
