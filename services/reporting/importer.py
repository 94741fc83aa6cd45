"""Importing a POSLog document into the store: parse off the event loop, store in one go."""

from __future__ import annotations

import asyncio
import logging
from typing import BinaryIO

from services.reporting.model import PosLogImportResult
from services.reporting.poslog import parse_poslog
from services.reporting.store import ReportStore

log = logging.getLogger(__name__)


async def import_poslog(
    store: ReportStore, source: BinaryIO, file_name: str, default_store_id: str = ""
) -> PosLogImportResult:
    """Import one POSLog document: all of it in one database transaction, or nothing.

    Raises PosLogError (with the line and column) when the document is malformed, hostile
    or not POSLog; nothing is stored then.
    """
    document = await asyncio.to_thread(
        parse_poslog,
        source,
        file_name=file_name,
        default_store_id=default_store_id,
        local_time=store.local_time,
        weight_unit=store.config.poslog_weight_unit,
    )
    imported, duplicates = await store.import_transactions(file_name, document.transactions)
    log.info(
        "imported %s: %d transactions, %d already imported, %d unknown elements skipped",
        file_name,
        imported,
        duplicates,
        sum(document.skipped_elements.values()),
    )
    return PosLogImportResult(imported, duplicates, dict(document.skipped_elements))
