"""Fixtures of the reporting tests: a store in a temporary folder, loaded or empty."""

from __future__ import annotations

import pytest
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore

from tests.reporting.reporting_builders import load_crafted, reporting_config


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
