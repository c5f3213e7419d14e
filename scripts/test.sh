#!/usr/bin/env bash
# Set everything up, then run the whole suite: ruff, mypy, and pytest (unit, in-process API,
# and end-to-end tests on the real vLLM engine). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" --browser
bin="$root/.venv/bin"
echo "[test] ruff" >&2
"$bin/ruff" check .
"$bin/ruff" format --check .
echo "[test] mypy" >&2
"$bin/mypy"
echo "[test] import layers" >&2
"$bin/lint-imports" --no-cache
echo "[test] pytest" >&2
# Exit 5 (no tests collected) is a failure here, as any non-zero exit is.
exec "$bin/python" -m pytest -p no:cacheprovider "$@"
