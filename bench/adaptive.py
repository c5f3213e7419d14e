r"""Adaptive precise mode and the old sequential rounds replayed on recorded fixed votes, no engine.

    PYTHONPATH=. .venv/bin/python bench/adaptive.py --replay RESULTS... [--config NAME...]
        [--samples K] [--sweep] [--warmups W...] [--percentiles P...] [--only SETTING...]
        [--json OUT]

RESULTS are harness results files (``quorum eval run``, or the rig's ``adaptive`` and
``evaluation`` scenarios) holding fixed votes (config ``n16-t0.7`` unless ``--config``; several
files and configs are pooled, each vote keyed by file, config and item; ``--samples K`` keeps
each vote's first K samples, seeded seed + i, so a vote of 16 is also a vote of 8). Each setting
of ``evaluation.tuning.grid`` is replayed on every vote with the live referee's decisions
(``evaluation.rules.replay_adaptive``): the server's stopping rule (``--sweep``: the others of
``bench.rig.replay.SWEEP`` too) or none, crossed with pruning (``--warmups`` x
``--percentiles``), and so are the old rounds (``bench.rig.replay`` says how); ``--only`` keeps
some settings' rows (the fixed vote is always the base). Printed: tokens and engine steps as
ratios to the fixed vote, accuracy with its Wilson 95% interval, the paired test against the
fixed vote (exact McNemar), and, for a whole grid, the defaults ``evaluation.tuning.
choose_defaults`` picks by its stated rule. The choice of the server's defaults::

    PYTHONPATH=. .venv/bin/python bench/adaptive.py --replay dev.jsonl dev-instr.jsonl \
        --config t07 t07x8-instr --samples 8 --sweep --warmups 2 3 4 \
        --percentiles 10 30 50 70 90

The live comparison, adaptive against a fixed vote on the same items and seeds, is the rig's
``adaptive`` scenario: ``python -m bench.rig adaptive [--limit 40] [--samples 16] [--prune]``
(bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.rig.costs import comparison_table, comparisons, cost_table
from bench.rig.replay import SWEEP, replay_costs
from evaluation import tuning


def choice(measured: list[tuning.Measured]) -> dict[str, Any]:
    """The rule's picks among a whole grid, by setting name."""
    picked = tuning.choose_defaults(measured, measured[0], fallback_rule=SWEEP[0][0])

    def name(m: tuning.Measured | None) -> str | None:
        return None if m is None else m.setting.name

    return {
        "stopping": name(picked.stopping),
        "prune": name(picked.prune),
        "prune_alone": name(picked.prune_alone),
        "prune_by_default": picked.prune_by_default,
    }


def main(argv: list[str]) -> int:
    """Replay the settings on the pooled fixed votes; print the tables and the rule's picks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replay", type=Path, nargs="+", required=True, help="results files")
    parser.add_argument("--config", nargs="+", default=["n16-t0.7"], help="fixed votes to pool")
    parser.add_argument("--samples", type=int, help="only each vote's first K samples")
    parser.add_argument("--sweep", action="store_true", help="every stopping rule of SWEEP")
    parser.add_argument("--warmups", type=int, nargs="*", default=[], help="pruning warm-ups")
    parser.add_argument("--percentiles", type=float, nargs="*", default=[], help="and percentiles")
    parser.add_argument("--only", nargs="*", default=[], help="only these settings' rows")
    parser.add_argument("--json", type=Path, help="write the rows, pairs and picks here too")
    options = parser.parse_args(argv)
    # decoding parses formulas with math-verify's alarms off; math-verify warns at each one
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    votes = tuning.load_votes(options.replay, options.config, options.samples)
    rules = SWEEP if options.sweep else SWEEP[:1]
    settings = tuning.grid(rules, options.warmups, options.percentiles)
    if unknown := set(options.only) - {s.name for s in settings}:
        raise SystemExit(f"not in the grid: {sorted(unknown)}")
    if options.only:
        settings = [s for s in settings if s.name == tuning.FIXED_VOTE or s.name in options.only]
    measured = [tuning.measure(setting, votes) for setting in settings]
    costs = replay_costs(measured, votes)
    pooled = ", ".join(f"{c} ({n})" for c, n in Counter(r.config for r in votes.values()).items())
    cut = "" if options.samples is None else f", first {options.samples} samples of each"
    title = f"{len(votes)} votes: {pooled}{cut}; wall in engine steps, ratios to the fixed vote"
    print(cost_table(title, costs).markdown() + "\n")
    print(comparison_table(costs).markdown())
    picks = None if options.only else choice(measured)  # the rule picks among a whole grid
    if picks is not None:
        print(f"\nChosen by evaluation.tuning.choose_defaults: {json.dumps(picks)}")
    if options.json is not None:
        pruned = {m.setting.name: m.pruned for m in measured}
        rows = cost_table(title, costs).as_dicts()
        for row in rows:
            row["pruned"] = pruned.get(str(row["config"]), 0)
        found = {"rows": rows, "comparisons": comparisons(costs), "choice": picks}
        options.json.write_text(json.dumps(found, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
