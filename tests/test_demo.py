"""`make demo` in small: a short run through the real services, checked from its summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SHARED_DATA


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "grocery").is_dir(), reason="../shared/data is missing")
def test_short_demo_catches_every_staged_loss_and_leaves_no_process(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lanesight",
            "demo",
            "--lanes",
            "2",
            "--minutes",
            "0.75",
            "--seed",
            "3",
            "--plain",
            "--work-dir",
            str(tmp_path / "demo"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "every staged loss was caught" in out, out
    # The attendant console ran over the demo's lanes and said where to open it.
    assert re.search(r"console +open http://127\.0\.0\.1:\d+/ and sign in", out), out
    assert re.search(r"stopped: console exit 0", out), out
    rows = re.findall(r"^([a-z_]+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    staged = {name: (int(s), int(c)) for name, s, c, _ in rows if int(s) > 0}
    assert staged, out  # the run staged at least one loss
    for name, (count, caught) in staged.items():
        assert caught == count, f"{name}: {caught}/{count} caught\n{out}"
    assert (tmp_path / "demo" / "report.html").stat().st_size > 1000
    assert re.search(r"stopped: .*reporting exit 0", out), out
    assert "exit None" not in out and "exit -9" not in out, out
    # No service or lane agent of this run outlives the demo.
    assert not _processes_mentioning(str(tmp_path)), out


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found
