"""The lanesight device service."""
