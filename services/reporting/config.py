"""Configuration of the reporting service (the [reporting] section)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class StoreInfo(BaseModel):
    """What reports say about a store: its name, time zone and region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    # The store's IANA zone; empty means the service's default ``timezone``.
    timezone: str = ""
    region: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_zone(value) if value else value


class ReportingConfig(BaseModel):
    """Settings of the reporting service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The SQLite database; its parent folders are created on start.
    db_path: Path = Path("var/reporting.db")
    # A PostgreSQL URL (postgresql://user@host:port/db) selects the PostgreSQL backend
    # instead of the SQLite file; empty keeps SQLite.
    database_url: str = ""
    # Connections the PostgreSQL backend keeps for reports (one more is kept for writes).
    pool_size: int = Field(default=4, ge=1, le=100)
    # Store id -> name, time zone and region (for chain reports and local time per store).
    stores: dict[str, StoreInfo] = Field(default_factory=dict)
    # Worker processes that check IngestRecords requests (parse, validate, make the rows
    # to store) off the event loop's thread, started with the first ingest stream; 0
    # checks them in the event loop. "auto": one per CPU beyond the first (affinity and
    # cgroup CPU limit), at most 2, so none on a single-CPU pod.
    ingest_workers: Literal["auto"] | Annotated[int, Field(ge=0, le=32)] = "auto"
    # The most records written in one database transaction.
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # Ingest acknowledges records once the raw events are stored; a background projector
    # then derives facts and rollups from them (docs/reporting.md, "Ingest and
    # projection"). Events the projector derives in one transaction:
    projection_batch_events: int = Field(default=2000, ge=1, le=100_000)
    # The projector lets ingest run first: it starts once no batch has been acknowledged
    # for projection_idle_s, or once its oldest pending event has waited
    # projection_max_delay_s; a report waiting for it starts it at once.
    projection_idle_s: float = Field(default=0.05, ge=0)
    projection_max_delay_s: float = Field(default=2.0, ge=0)
    # The lag bound: ingest waits while this many stored events are not projected yet.
    projection_max_lag_events: int = Field(default=50_000, ge=1)
    # Raw lane events and the per-event detail derived from them are kept this many days,
    # then rolled up into daily per-lane aggregates (kept) and deleted.
    raw_event_retention_days: int = Field(default=90, ge=1)
    # Evidence references of alerts (the supporting event ids) are kept this many days.
    evidence_retention_days: int = Field(default=30, ge=1)
    # How often the service applies retention, in seconds; 0 turns the sweep off.
    retention_interval_s: float = Field(default=3600.0, ge=0)
    # Rows per page when a request asks for 0, and the most a request may ask for.
    default_page_size: int = Field(default=100, ge=1)
    max_page_size: int = Field(default=1000, ge=1)
    # The IANA time zone of lane time for hour-of-day and day grouping and for POSLog
    # timestamps that carry no offset.
    timezone: str = "UTC"
    # The weight unit of POSLog weighed-item quantities that name none: "auto" means
    # pounds when the transaction's currency is USD, kilograms otherwise.
    poslog_weight_unit: Literal["auto", "kg", "lb"] = "auto"
    # Where the HTML page links an alert's evidence: a URL with {event_id} (and {alert_id}),
    # e.g. a video console; empty lists the evidence events on the page itself.
    evidence_url: str = ""
    # How many items the lane-health report lists as often keyed (labels to reprint).
    keyed_items_limit: int = Field(default=50, ge=1, le=10_000)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (or empty for the SQLite file)")
        return value

    def store_zones(self) -> dict[str, str]:
        """Store id -> IANA zone, for the stores configured with their own zone."""
        return {s: info.timezone for s, info in self.stores.items() if info.timezone}

    def store_name(self, store_id: str) -> str:
        """The configured name of a store, else its id."""
        info = self.stores.get(store_id)
        return info.name if info and info.name else store_id

    @model_validator(mode="after")
    def _page_sizes(self) -> ReportingConfig:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self
