"""``python -m bench.rig <scenario> [options]``: one command per benchmark (see bench/README.md)."""

from __future__ import annotations

import sys

from bench.rig.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
