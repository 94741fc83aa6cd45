"""The lanesight reporting service."""
