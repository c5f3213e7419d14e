"""Quorum's HTTP face and its engines."""

from server.app import create_app
from server.settings import Settings

__all__ = ["Settings", "create_app"]
