"""Fixtures shared with the fusion tests: a real fusion server on port 0."""

from tests.fusion.conftest import demo, demo_items, fusion_config, fusion_server  # noqa: F401
