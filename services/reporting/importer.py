"""Importing a POSLog document: parsed in a worker thread, stored as it streams in, all in
one database transaction (so a bad file imports nothing)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import BinaryIO

from lanesight.reporting.model import PosLogImportResult
from lanesight.reporting.poslog import PosLogTransaction, parse_poslog
from lanesight.reporting.store import ReportStore

log = logging.getLogger(__name__)

# Parsed transactions waiting to be written: bounds memory whatever the file's size.
_QUEUE_BATCHES = 4
_BATCH_TRANSACTIONS = 200


class _Abandoned(Exception):
    """The importer stopped consuming; the parser thread stops too."""


class StoreNotAllowed(Exception):
    """The document holds a transaction of a store the importer may not write."""

    def __init__(self, store_id: str) -> None:
        super().__init__(f"transaction of store {store_id!r} is out of this caller's scope")
        self.store_id = store_id


async def import_poslog(
    store: ReportStore,
    source: BinaryIO,
    file_name: str,
    default_store_id: str = "",
    allow_store: Callable[[str], bool] | None = None,
) -> PosLogImportResult:
    """Import one POSLog document: all of it, or nothing.

    Raises PosLogError (with the line and column) when the document is malformed, hostile
    or not POSLog, and StoreNotAllowed when allow_store refuses a transaction's store. The
    live feed waits while the file is written (one write transaction).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=_QUEUE_BATCHES)
    abandoned = threading.Event()
    pending: list[PosLogTransaction] = []

    def hand_over(item) -> None:
        # Blocks the parser thread while the queue is full: back-pressure, not buffering.
        # Once the importer gave up it drains the queue, so a blocked put always returns.
        if abandoned.is_set():
            raise _Abandoned
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def collect(transaction: PosLogTransaction) -> None:
        pending.append(transaction)
        if len(pending) >= _BATCH_TRANSACTIONS:
            hand_over(("batch", pending.copy()))
            pending.clear()

    def parse() -> None:
        try:
            document = parse_poslog(
                source,
                file_name=file_name,
                default_store_id=default_store_id,
                local_time=store.zones,
                weight_unit=store.config.poslog_weight_unit,
                on_transaction=collect,
            )
            hand_over(("batch", pending.copy()))
            hand_over(("done", dict(document.skipped_elements)))
        except _Abandoned:
            return
        except Exception as exc:  # handed to the importer, which re-raises it
            try:
                hand_over(("error", exc))
            except _Abandoned:
                return

    parser = loop.run_in_executor(None, parse)
    skipped: dict[str, int] = {}
    try:
        async with store.poslog_import(file_name) as batch:
            while True:
                kind, payload = await queue.get()
                if kind == "error":
                    raise payload
                if kind == "done":
                    skipped = payload
                    break
                for key, events in payload:
                    if allow_store is not None and not allow_store(key[0]):
                        raise StoreNotAllowed(key[0])
                    await batch.add(key, events)
    finally:
        abandoned.set()
        while not queue.empty():
            queue.get_nowait()
        await parser
    log.info(
        "imported %s: %d transactions, %d already imported, %d unknown elements skipped",
        file_name,
        batch.imported,
        batch.duplicates,
        sum(skipped.values()),
    )
    return PosLogImportResult(batch.imported, batch.duplicates, skipped)
