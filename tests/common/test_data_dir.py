"""The data folder is one setting: LANESIGHT_DATA_DIR, default ../shared/data."""

from __future__ import annotations

from pathlib import Path

from lanesight.common.config import DATA_DIR_ENV, data_dir, load_config

from tests.conftest import REPO_ROOT, SHARED_DATA


def test_default_is_shared_data_beside_the_repository(monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert data_dir() == REPO_ROOT.parent / "shared" / "data"
    assert data_dir("grocery", "dataset") == REPO_ROOT.parent / "shared" / "data" / "grocery" / "dataset"


def test_the_variable_moves_it_and_is_no_config_key(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert data_dir("poslog") == tmp_path / "poslog"
    load_config(None)  # LANESIGHT_DATA_DIR is not read as an unknown config key


def test_tests_use_it():
    assert SHARED_DATA == data_dir()


def test_no_other_module_builds_the_path():
    roots = ("services", "tests", "benchmarks", "training")
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for root in roots
        for path in (REPO_ROOT / root).rglob("*.py")
        if '"shared" / "data"' in path.read_text(encoding="utf-8")
        and path != REPO_ROOT / "services" / "common" / "config.py"
        and path != Path(__file__)
    ]
    assert offenders == []
