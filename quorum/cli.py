"""The ``quorum`` console script: one command for the server, the evaluation and the models.

quorum serve [--host H --port P --model DIR ...]   start the server (flags: serve --help)
quorum serve --upstream URL [--upstream URL ...]   serve through vLLM servers (scale-out)
quorum eval [items|run|report] ...                 measure precise mode (eval --help)
quorum prepare-model [--tiny DIR]                  build the embedded model (or a tiny one)

Each subcommand's module is imported only when it runs, so ``quorum eval report`` needs no
engine and ``quorum serve`` loads no evaluation code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

USAGE = __doc__ or ""


def _serve(args: list[str]) -> int:
    from server.cli import serve

    return serve(args)


def _eval(args: list[str]) -> int:
    from evaluation.cli import main

    return main(args)


def _prepare_model(args: list[str]) -> int:
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


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "serve": _serve,
    "eval": _eval,
    "prepare-model": _prepare_model,
}


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``quorum <command>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
