"""Configuration of the reporting service (the [reporting] section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ReportingConfig(BaseModel):
    """Settings of the reporting service."""

    model_config = ConfigDict(extra="forbid", frozen=True)
