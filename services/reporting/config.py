"""Configuration of the reporting service (the [reporting] section)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ReportingConfig(BaseModel):
    """Settings of the reporting service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The SQLite database; its parent folders are created on start.
    db_path: Path = Path("var/reporting.db")
    # The most records written in one database transaction.
    batch_size: int = Field(default=500, ge=1, le=100_000)
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
    # How many items the lane-health report lists as often keyed (labels to reprint).
    keyed_items_limit: int = Field(default=50, ge=1, le=10_000)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _page_sizes(self) -> ReportingConfig:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self
