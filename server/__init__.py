"""Quorum's HTTP face and its engines."""

__version__ = "0.1.0"

from server.app import create_app
from server.settings import Settings

__all__ = ["Settings", "__version__", "create_app"]
