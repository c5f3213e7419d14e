"""The ``quorum`` console script: the top of the layers, the only module that sees them all.

quorum serve [--host H --port P --model DIR ...]   start the server (flags: serve --help)
quorum serve --upstream URL [--upstream URL ...]   serve through vLLM servers (scale-out)
quorum prepare-model [--tiny DIR]                  build the embedded model (or a tiny one)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from server.runtime.logging_setup import configure_logging
from server.runtime.settings import Settings

USAGE = __doc__ or ""


def serve(args: list[str]) -> int:
    """Start the HTTP server on the in-process vLLM engine, or on ``--upstream`` servers."""
    settings = Settings(_cli_parse_args=args)
    configure_logging(settings.log_level, [key.get_secret_value() for key in settings.api_keys])

    from server.api.app import create_app
    from server.engines.factory import build_engine
    from server.runtime.serve import run_server

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


def prepare_model(args: list[str]) -> int:
    """Build the embedded model into the cache (or a tiny random model into ``--tiny``)."""
    parser = argparse.ArgumentParser(prog="quorum prepare-model")
    parser.add_argument("--tiny", type=Path, help="build a tiny random Llama into this folder")
    parser.add_argument("--cache-dir", type=Path, help="cache folder for the embedded model")
    options = parser.parse_args(args)
    from modelprep import build_tiny_model, prepare_embedded_model

    if options.tiny is not None:
        print(build_tiny_model(options.tiny))
        return 0
    print(prepare_embedded_model(options.cache_dir))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``quorum <command>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    commands = {"serve": serve, "prepare-model": prepare_model}
    if not args or args[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    return commands[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
