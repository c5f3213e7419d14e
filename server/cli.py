"""``quorum serve``: the top of the server's layers, the only module that sees them all.

It builds the settings, the engine and the app, and runs them until a shutdown.
"""

from __future__ import annotations

import asyncio
import sys

from server.runtime.logging_setup import configure_logging
from server.runtime.settings import Settings


def serve(args: list[str]) -> int:
    """Start the HTTP server on the in-process vLLM engine, or on ``--upstream`` servers."""
    settings = Settings(_cli_parse_args=args)
    configure_logging(settings.log_level, [key.get_secret_value() for key in settings.api_keys])

    from server.api.app import create_app
    from server.engines.factory import build_engine, engine_missing
    from server.runtime.serve import run_server

    if (missing := engine_missing(settings)) is not None:
        print(f"quorum serve: {missing}", file=sys.stderr)
        return 2  # a configuration error: the install or the flags must change
    if settings.upstreams:
        from server.engines.upstream import resolve_upstream_settings
        from server.errors import QuorumError

        try:  # the served name and context length come from the upstreams unless given
            settings = asyncio.run(resolve_upstream_settings(settings))
        except (QuorumError, ValueError) as exc:
            print(f"quorum serve: {exc}", file=sys.stderr)
            return 1
    app = create_app(settings, build_engine(settings))
    # Signals drain in-flight work first (server.runtime.serve); the exit code says why we stopped.
    return run_server(app, settings)
