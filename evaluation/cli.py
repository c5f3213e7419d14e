"""``quorum eval``: build items, run them against a server, report; or all three in one go.

    quorum eval items [--check]                      regenerate the committed item files
    quorum eval run --url URL | --in-process [...]   ask every (item, config) pair, resumably
    quorum eval report RESULTS... --out DIR [--shared]  offline analysis: JSON, Markdown, plots
    quorum eval [all] [run options] [--out DIR]      run into DIR/results.jsonl, then report DIR

Without ``--url`` a run starts the real app with the in-process vLLM engine (``--model DIR``,
default the embedded SmolLM2-135M) and drives it through ``httpx.ASGITransport``. Configs are
``--config SPEC`` (repeatable; see ``evaluation.configs``), default ``greedy`` and ``vote``
(16 samples at temperature 0.7).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from evaluation.configs import DEFAULT_CONFIGS

DEFAULT_OUT = Path("eval-out")
RESULTS_NAME = "results.jsonl"
COMMANDS = ("items", "run", "report", "all")


def _run_options(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help="a running Quorum server, e.g. http://127.0.0.1:8000")
    target.add_argument(
        "--in-process", action="store_true", help="start the app and vLLM here (the default)"
    )
    parser.add_argument("--model", type=Path, help="in-process model folder (default: embedded)")
    parser.add_argument("--max-model-len", type=int, help="in-process context window")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("QUORUM_EVAL_API_KEY"),
        help="bearer key for --url (default: $QUORUM_EVAL_API_KEY)",
    )
    parser.add_argument("--items-dir", type=Path, help="another items folder (with a manifest)")
    parser.add_argument("--split", choices=("dev", "test", "all"), default="dev")
    parser.add_argument("--sets", help="comma-separated item sets (default: all)")
    parser.add_argument("--limit", type=int, help="at most N items, round-robin over sets")
    parser.add_argument(
        "--config",
        action="append",
        dest="configs",
        metavar="SPEC",
        help=f"a run config, repeatable (default: {' and '.join(DEFAULT_CONFIGS)})",
    )
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="per-request limit")
    parser.add_argument(
        "--ready-timeout-s", type=float, default=300.0, help="wait this long for --url's /ready"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quorum eval", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command")
    items = sub.add_parser("items", help="regenerate the committed item files")
    items.add_argument("--check", action="store_true", help="compare only; exit 1 on a change")
    run = sub.add_parser("run", help="ask every (item, config) pair, resumably")
    _run_options(run)
    run.add_argument("--results", type=Path, default=DEFAULT_OUT / RESULTS_NAME)
    report = sub.add_parser("report", help="offline analysis of results files")
    report.add_argument("results", type=Path, nargs="+")
    report.add_argument("--out", type=Path, default=DEFAULT_OUT)
    report.add_argument(
        "--shared",
        action="store_true",
        help="only the items every config answered (paired comparisons of partial runs)",
    )
    both = sub.add_parser("all", help="run into OUT/results.jsonl, then report into OUT")
    _run_options(both)
    both.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser


def main(argv: list[str]) -> int:
    """Dispatch ``quorum eval <command>``; no command means ``all`` with its defaults."""
    args = list(argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help")):
        args = ["all", *args]
    options = _parser().parse_args(args)
    command = ["quorum", "eval", *argv]
    if options.command == "items":
        return _items(options.check)
    if options.command == "run":
        return _run(options, options.results)
    if options.command == "report":
        return _report(options.results, options.out, command, shared=options.shared)
    results = options.out / RESULTS_NAME
    code = _run(options, results)
    return code or _report([results], options.out, command)


def _items(check: bool) -> int:
    from evaluation.items.build import build, differences, write

    files = build()
    changed = differences(files)
    if check:
        for name in changed:
            print(f"differs from its generator: {name}", file=sys.stderr)
        return 1 if changed else 0
    write(files)
    print(f"wrote {len(files)} files; changed: {', '.join(changed) or 'none'}")
    return 0


def _run(options: argparse.Namespace, results_path: Path) -> int:
    from evaluation.configs import parse_config
    from evaluation.items.store import ITEMS_DIR, interleave, load_items
    from evaluation.results import ResultsFile
    from evaluation.runner import run
    from evaluation.targets import app_client, remote_client, vllm_app

    split = None if options.split == "all" else options.split
    sets = options.sets.split(",") if options.sets else None

    async def go() -> int:
        with ResultsFile(results_path) as results:
            if options.url:
                target = remote_client(
                    options.url, options.api_key, ready_timeout_s=options.ready_timeout_s
                )
            else:
                extra = (
                    {}
                    if options.max_model_len is None
                    else {"max_model_len": options.max_model_len}
                )
                target = app_client(vllm_app(options.model, **extra))
            async with target as client:
                summary = await run(
                    client,
                    items,
                    configs,
                    results,
                    concurrency=options.concurrency,
                    timeout_s=options.timeout_s,
                    progress=not options.no_progress,
                )
        print(
            f"{summary.answered} answered, {summary.failed} failed, {summary.skipped} already "
            f"done, of {summary.planned} pairs in {summary.wall_s:.1f} s -> {results_path}"
        )
        return 0

    try:  # bad items, configs or an unreachable server are the user's to fix: no traceback
        folder = options.items_dir or ITEMS_DIR
        items = interleave(load_items(folder, sets=sets, split=split), options.limit)
        configs = [parse_config(spec) for spec in options.configs or DEFAULT_CONFIGS]
        return asyncio.run(go())
    except (ValueError, ConnectionError) as exc:
        print(f"quorum eval: {exc}", file=sys.stderr)
        return 2


def _report(results: list[Path], out: Path, command: list[str], *, shared: bool = False) -> int:
    from evaluation.report import write_report

    # decoding parses formulas with math-verify's alarms off (it has its own bounds) and
    # math-verify logs a warning for each such parse.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    markdown = write_report(results, out, command=command, shared=shared)
    print(markdown)
    return 0
