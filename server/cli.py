"""The ``quorum`` console script.

quorum serve [--host H --port P --model DIR ...]   start the server (flags: serve --help)
quorum serve --upstream URL [--upstream URL ...]   serve through vLLM servers (scale-out)
quorum prepare-model [--tiny DIR]                  build the embedded model (or a tiny one)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from server.logging_setup import configure_logging
from server.settings import Settings

USAGE = __doc__ or ""


def model_folder(settings: Settings) -> Path:
    """The model folder to load: the user's, or the embedded default, prepared if missing."""
    if settings.model is not None:
        return Path(settings.model)
    from server.embedded_model import prepare_embedded_model

    return prepare_embedded_model(settings.cache_dir)


def serve(args: list[str]) -> int:
    """Start the HTTP server on the in-process vLLM engine, or on ``--upstream`` servers."""
    settings = Settings(_cli_parse_args=args)
    configure_logging(settings.log_level, [key.get_secret_value() for key in settings.api_keys])

    from decoding.engine import Engine
    from server.app import create_app
    from server.engines.testing import engine_for_tests
    from server.shutdown import run_server

    engine: Engine
    if settings.upstreams:
        from server.engines.upstream import UpstreamEngine, resolve_upstream_settings
        from server.errors import QuorumError

        try:  # the served name and context length come from the upstreams unless given
            settings = asyncio.run(resolve_upstream_settings(settings))
        except (QuorumError, ValueError) as exc:
            print(f"quorum serve: {exc}", file=sys.stderr)
            return 1
        engine = UpstreamEngine(settings)
    elif (paced := engine_for_tests(settings)) is not None:
        engine = paced  # hidden test setting QUORUM_TEST_ENGINE=scripted: no model
    else:
        from server.engines.vllm_engine import VllmEngine

        engine = VllmEngine(settings, model_folder(settings))
    app = create_app(settings, engine)
    # Signals drain in-flight work first (server.shutdown); the exit code says why we stopped.
    return run_server(app, settings)


def prepare_model(args: list[str]) -> int:
    """Build the embedded model into the cache (or a tiny random model into ``--tiny``)."""
    parser = argparse.ArgumentParser(prog="quorum prepare-model")
    parser.add_argument("--tiny", type=Path, help="build a tiny random Llama into this folder")
    parser.add_argument("--cache-dir", type=Path, help="cache folder for the embedded model")
    options = parser.parse_args(args)
    if options.tiny is not None:
        from server.tiny_model import build_tiny_model

        print(build_tiny_model(options.tiny))
        return 0
    from server.embedded_model import prepare_embedded_model

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
