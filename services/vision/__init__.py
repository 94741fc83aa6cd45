"""The lanesight vision service."""
