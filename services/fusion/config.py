"""Configuration of the fusion service (the [fusion] section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FusionConfig(BaseModel):
    """Settings of the fusion service."""

    model_config = ConfigDict(extra="forbid", frozen=True)
