"""Quorum's server: an HTTP face (``server.api``) over request handling (``server.serving``)
and interchangeable engines (``server.engines``), with the process's runtime in
``server.runtime``. Build an app with ``server.api.app.create_app``."""

__version__ = "0.1.0"

__all__ = ["__version__"]
