"""Adaptive precise mode and the old sequential rounds replayed on recorded fixed votes, no engine.

    PYTHONPATH=. .venv/bin/python bench/adaptive.py --replay RESULTS [--sweep] [--config NAME]

RESULTS is any harness results file (``quorum eval run``, or the rig's ``adaptive`` and
``evaluation`` scenarios) holding fixed votes (config ``n16-t0.7`` unless ``--config``). For each
one, the adaptive vote is replayed with the server's stopping rule (``--sweep``: looser rules
too) and so are the old sequential rounds (``bench.rig.replay`` says how), for many more items
than a live run affords; wall is in engine steps. The live comparison, adaptive against a fixed
vote on the same items and seeds, is the rig's ``adaptive`` scenario:
``python -m bench.rig adaptive [--limit 40] [--samples 16] [--prune]`` (bench/README.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.rig.costs import cost_table
from bench.rig.harness import judged
from bench.rig.replay import replay_costs


def main(argv: list[str]) -> int:
    """Replay on the fixed votes of a results file and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replay", type=Path, required=True, help="a harness results file")
    parser.add_argument("--sweep", action="store_true", help="more stopping rules")
    parser.add_argument("--config", default="n16-t0.7", help="the fixed vote's config name")
    options = parser.parse_args(argv)
    fixed = judged(options.replay, [options.config])[options.config]
    if not fixed:
        raise SystemExit(f"no {options.config} runs in {options.replay}")
    title = f"{len(fixed)} items; wall in engine steps, ratios to {options.config}"
    print(cost_table(title, replay_costs(fixed, options.config, sweep=options.sweep)).markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
