"""The ``quorum`` console script.

quorum serve [--host H --port P --model DIR ...]   start the server (flags: serve --help)
quorum prepare-model [--tiny DIR]                  build the embedded model (or a tiny one)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from server.settings import Settings

USAGE = __doc__ or ""


class JsonFormatter(logging.Formatter):
    """One JSON object per log line, so logs are machine-readable."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure_logging(level: str) -> None:
    """Structured logs on stderr at the configured level."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def model_folder(settings: Settings) -> Path:
    """The model folder to load: the user's, or the embedded default, prepared if missing."""
    if settings.model is not None:
        return Path(settings.model)
    from server.embedded_model import prepare_embedded_model

    return prepare_embedded_model(settings.cache_dir)


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def serve(args: list[str]) -> int:
    """Start the HTTP server on the in-process vLLM engine."""
    settings = Settings(_cli_parse_args=args)
    configure_logging(settings.log_level)
    import uvicorn

    from server.app import create_app
    from server.engines.vllm_engine import VllmEngine

    engine = VllmEngine(settings, model_folder(settings))
    app = create_app(settings, engine)
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal under the previous handler:
    # make that handler a clean exit, so a requested shutdown ends with status 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    return 0


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
