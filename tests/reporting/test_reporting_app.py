"""The service wiring: config section, start and stop, the retention sweep."""

from __future__ import annotations

import sqlite3

import pytest
from lanesight.common.config import ConfigError, load_config
from lanesight.common.server import start_server
from lanesight.reporting.app import create_app

from tests.conftest import assert_eventually


def test_config_section_defaults_and_environment_overrides(tmp_path):
    config = load_config(None, environ={})
    assert str(config.reporting.db_path) == "var/reporting.db"
    assert (config.reporting.default_page_size, config.reporting.max_page_size) == (100, 1000)
    config = load_config(
        None,
        environ={
            "LANESIGHT_REPORTING__DB_PATH": str(tmp_path / "x.db"),
            "LANESIGHT_REPORTING__RAW_EVENT_RETENTION_DAYS": "7",
            "LANESIGHT_REPORTING__TIMEZONE": "Europe/Berlin",
        },
    )
    assert config.reporting.db_path == tmp_path / "x.db"
    assert config.reporting.raw_event_retention_days == 7
    for key, value in (
        ("TIMEZONE", "Mars/Olympus_Mons"),
        ("BATCH_SIZE", "0"),
        ("DEFAULT_PAGE_SIZE", "5000"),
        ("NO_SUCH_KEY", "1"),
    ):
        with pytest.raises(ConfigError) as failure:
            load_config(None, environ={f"LANESIGHT_REPORTING__{key}": value})
        assert "reporting" in str(failure.value)


@pytest.mark.sqlite_only
async def test_service_creates_its_database_sweeps_retention_and_stops_cleanly(tmp_path):
    db = tmp_path / "var" / "nested" / "reporting.db"
    config = load_config(
        None,
        environ={
            "LANESIGHT_REPORTING__DB_PATH": str(db),
            "LANESIGHT_REPORTING__RETENTION_INTERVAL_S": "0.05",
        },
    )
    app = create_app(config)
    running = await start_server(app, config, port=0)
    try:
        assert db.exists()

        def swept() -> bool:
            with sqlite3.connect(db) as conn:
                return conn.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 1

        await assert_eventually(swept)
    finally:
        await running.stop()
    assert app.store is None
    await app.stop()  # idempotent
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
