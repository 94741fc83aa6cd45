"""Configuration of the vision service (the [vision] section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class VisionConfig(BaseModel):
    """Settings of the vision service."""

    model_config = ConfigDict(extra="forbid", frozen=True)
