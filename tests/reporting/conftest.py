"""Fixtures of the reporting tests: every test runs against both backends (SQLite in a
temporary folder, and a fresh database of a throwaway PostgreSQL cluster)."""

from __future__ import annotations

import itertools

import pytest
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore

from tests.reporting import reporting_builders
from tests.reporting.postgres import cluster, find_bin
from tests.reporting.reporting_builders import load_crafted, reporting_config

_DATABASES = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: checks the SQLite file itself")


@pytest.fixture(scope="session")
def postgres_server():
    """The base URL of a PostgreSQL cluster started for this session."""
    if not find_bin("initdb"):
        pytest.skip("PostgreSQL is not installed (no initdb): .ci/run installs it")
    with cluster() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True)
async def backend(request):
    """The reporting backend of this test run; for PostgreSQL a fresh database, which
    reporting_config() then names in database_url."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("checks the SQLite file itself")
    import asyncpg

    base = request.getfixturevalue("postgres_server")
    name = f"t{next(_DATABASES)}"
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    reporting_builders.DATABASE_URL = f"{base}/{name}"
    try:
        yield "postgresql"
    finally:
        reporting_builders.DATABASE_URL = ""


@pytest.fixture
async def store(tmp_path):
    opened = await ReportStore.open(reporting_config(tmp_path))
    yield opened
    await opened.close()


@pytest.fixture
async def loaded(store):
    """The store holding the crafted dataset, and its reports."""
    await load_crafted(store)
    return store, Reports(store.reader, store.config)
