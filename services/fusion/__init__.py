"""The lanesight fusion service."""
