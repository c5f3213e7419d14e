#!/usr/bin/env bash
# Set everything up, then serve the embedded default model on 127.0.0.1:8000.
# Extra arguments go to `quorum serve` (see `.venv/bin/quorum serve --help`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
exec "$root/.venv/bin/quorum" serve "$@"
