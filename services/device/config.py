"""Configuration of the device service (the [device] section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeviceConfig(BaseModel):
    """Settings of the device service."""

    model_config = ConfigDict(extra="forbid", frozen=True)
