"""Precise mode against optillm's majority voting, in front of the same vLLM server.

optillm (PyPI ``optillm``, in a virtualenv of its own: ``--optillm PATH`` to its command) runs
its ``majority_voting`` approach: one upstream chat of ``n=k`` samples, then a vote over answers
it extracts with a few regular expressions. Quorum runs ``--upstream`` in front of the same
vLLM server: ``/v1/precise`` with ``samples: k``, one upstream request of ``n=k`` too. Both get
the same evaluation items (``evaluation/items``, test split), the same system and user message,
temperature and ``max_tokens``; for each item the two alternate in a rotated order. Scored with
``evaluation.scoring``: Quorum's voted answer, and the answer ``decoding`` extracts from the
text optillm returns (it returns the winning sample's text). optillm answers upstream errors with
HTTP 200 and a text starting "Error": such answers count as errors, not as wrong answers.
"""

from __future__ import annotations

import argparse
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.rig.common import CHAT, PRECISE, message_text, setup_from
from bench.rig.measure import Call, Deadline, call, client_for, median, percentile, ratio
from bench.rig.report import Report, Table
from bench.rig.systems import (
    System,
    attached,
    optillm_server,
    quorum_server,
    running,
    vllm_server,
)
from decoding.extraction import extract_answer
from evaluation.items.store import Item, interleave, load_items
from evaluation.scoring import Scorer
from evaluation.stats import wilson

SYSTEM_PROMPT = "You are a helpful assistant. Solve the problem and state the final answer."
DEFAULT_SETS = "chain_sum,basic_arithmetic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This scenario's options."""
    parser.add_argument("--optillm", default=None, help="optillm's command (default: on PATH)")
    parser.add_argument("--items", type=int, default=40, help="evaluation items, test split")
    parser.add_argument("--sets", default=DEFAULT_SETS, help="item sets, comma-separated")
    parser.add_argument("--samples", type=int, default=8, help="N: optillm's k, Quorum's samples")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--vllm-url", default=None, help="use this vLLM server, do not start one")


def optillm_error(text: str | None) -> bool:
    """optillm's in-band failure: HTTP 200 whose text is its error message, or no text."""
    return text is None or text.strip().startswith("Error")


def messages(item: Item) -> list[dict[str, str]]:
    """The same conversation for both systems (optillm keeps the system message)."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": item.question},
    ]


def quorum_answer(done: Call) -> str | None:
    """Quorum's voted answer (None when it abstained or failed)."""
    answer = done.payload.get("answer") if done.ok and done.payload else None
    return answer if isinstance(answer, str) else None


def optillm_answer(done: Call) -> str | None:
    """The answer in the text optillm returned, extracted as Quorum would from a sample."""
    text = message_text(done.payload) if done.ok else None
    return None if optillm_error(text) or text is None else extract_answer(text, "auto")


def optillm_command(args: Any) -> Path:
    """Where optillm is, or a clear exit."""
    found = args.optillm or shutil.which("optillm")
    if not found or not Path(found).exists():
        raise SystemExit(
            "optillm not found: install it in a virtualenv of its own (bench/README.md, "
            "'optillm side by side') and pass --optillm PATH/TO/venv/bin/optillm"
        )
    return Path(found)


async def run(args: Any, report: Report) -> None:
    """Ask every item of both systems, alternating; latency, tokens and accuracy."""
    setup = setup_from(args)
    command = optillm_command(args)
    items = interleave(load_items(sets=args.sets.split(","), split="test"), args.items)
    vllm = (
        attached("vllm", args.vllm_url, setup.served_name) if args.vllm_url else vllm_server(setup)
    )
    quorum = quorum_server(setup, upstream=vllm)
    optillm = optillm_server(setup, command, vllm)
    deadline = Deadline(args.budget_s)
    calls: dict[str, list[Call]] = defaultdict(list)
    correct: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    with running([vllm, quorum, optillm]):
        clients = {s.name: client_for(s) for s in (quorum, optillm)}
        try:
            for index, item in enumerate(items):
                if deadline.passed():
                    break
                order: list[System] = [quorum, optillm] if index % 2 == 0 else [optillm, quorum]
                for system in order:
                    done = await ask(system, item, args, clients[system.name])
                    calls[system.name].append(done)
                    answer = quorum_answer(done) if system is quorum else optillm_answer(done)
                    failed = not done.ok or (
                        system is optillm and optillm_error(message_text(done.payload))
                    )
                    if failed:
                        errors[system.name] += 1
                    elif Scorer(item.kind, item.answer, item.metadata)(answer):
                        correct[system.name] += 1
        finally:
            for client in clients.values():
                await client.aclose()
    table = Table(
        f"Majority voting, N={args.samples}, temperature {args.temperature}, "
        f"max_tokens {args.max_tokens}, {args.sets} (test)",
        ["system", "items", "errors", "correct", "accuracy", "95% CI", "p50 ms", "p99 ms",
         "tokens/item", "p50 x quorum"],
    )  # fmt: skip
    base = median([c.seconds for c in calls[quorum.name] if c.ok])
    for system in (quorum, optillm):
        answered = calls[system.name]
        seconds = [c.seconds for c in answered if c.ok]
        asked, right = len(answered), correct[system.name]
        low, high = wilson(right, asked) if asked else (0.0, 1.0)
        table.add(
            system.name,
            asked,
            errors[system.name],
            right,
            right / asked if asked else float("nan"),
            f"{low:.2f}-{high:.2f}",
            median(seconds) * 1000,
            percentile(seconds, 99) * 1000,
            median([float(c.completion_tokens) for c in answered if c.ok]),
            ratio(median(seconds), base),
        )
    report.tables = [table]
    report.figures = {"rows": table.as_dicts()}
    if errors[quorum.name]:
        report.failures.append(f"Quorum failed {errors[quorum.name]} items")
    if errors[optillm.name]:
        report.notes.append(f"optillm answered {errors[optillm.name]} items with an error")
    if deadline.hit:
        report.notes.append(f"the {args.budget_s:.0f} s budget ran out: fewer items than asked")


async def ask(system: System, item: Item, args: Any, client: Any) -> Call:
    """One item, as each system is asked for a vote of N."""
    if system.name == "optillm":
        body = {
            "model": f"majority_voting-{system.model}",
            "messages": messages(item),
            "k": args.samples,
            "temperature": args.temperature,
            "max_tokens": args.max_tokens,
        }
        return await call(client, CHAT, body)
    body = {
        "messages": messages(item),
        "samples": args.samples,
        "temperature": args.temperature,
        "max_tokens": args.max_tokens,
        "seed": 1000,
    }
    return await call(client, PRECISE, body)
