"""``python -m evaluation ...`` is ``quorum eval ...``."""

import sys

from evaluation.cli import main

sys.exit(main(sys.argv[1:]))
