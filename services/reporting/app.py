"""The reporting service's gRPC app: the store, its retention sweep and the servicer."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import grpc
from lanesight.common.app import ServiceApp
from lanesight.common.config import LanesightConfig
from lanesight.reporting import metrics
from lanesight.reporting.ingest_checks import IngestChecker, resolve_workers
from lanesight.reporting.localtime import now_ms
from lanesight.reporting.reports import Reports
from lanesight.reporting.retention import apply_retention
from lanesight.reporting.servicer import ReportingServicer, add_servicer
from lanesight.reporting.store import ReportStore
from lanesight.v1 import reporting_pb2

log = logging.getLogger(__name__)


class ReportingApp(ServiceApp):
    """The reporting service: owns the store from start() to stop()."""

    name = "reporting"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config
        self.store: ReportStore | None = None
        self.reports: Reports | None = None
        self.shutting_down = asyncio.Event()
        self._retention_task: asyncio.Task | None = None
        # IngestRecords' checks: in worker processes started with the first ingest stream
        # (reporting.ingest_workers), else in the event loop.
        self.ingest_checker = IngestChecker(resolve_workers(config.reporting.ingest_workers))

    def service_names(self) -> list[str]:
        return [reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        add_servicer(metrics.timed_reports(ReportingServicer(self)), server)

    async def start(self) -> None:
        metrics.watch(self)
        self.store = await ReportStore.open(self.config.reporting)
        self.reports = Reports(self.store.reader, self.config.reporting)
        if self.config.reporting.retention_interval_s > 0:
            self._retention_task = asyncio.create_task(self._retention_loop())
        settings = self.config.reporting
        if settings.database_url:
            where = urlsplit(settings.database_url)
            log.info("reporting store open on PostgreSQL %s%s", where.hostname or "", where.path)
        else:
            log.info("reporting store open at %s", settings.db_path)

    async def _retention_loop(self) -> None:
        interval = self.config.reporting.retention_interval_s
        while True:
            try:
                assert self.store is not None  # opened in start()
                await apply_retention(self.store, now_ms())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention pass failed; retrying in %.0fs", interval)
            await asyncio.sleep(interval)

    async def begin_shutdown(self) -> None:
        """End the ingest streams (senders reconnect elsewhere and resend unacked records)."""
        self.shutting_down.set()

    async def stop(self) -> None:
        """Stop the retention sweep and close the database; idempotent."""
        metrics.unwatch(self)
        self.shutting_down.set()
        task, self._retention_task = self._retention_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        store, self.store = self.store, None
        self.reports = None
        try:
            await self.ingest_checker.close()
        finally:
            if store is not None:
                await store.close()


def create_app(config: LanesightConfig) -> ReportingApp:
    """Build the reporting service from config."""
    return ReportingApp(config)
