#!/usr/bin/env bash
# Gateway image smoke test: build docker/Dockerfile.gateway with podman, check its size, check that
# it refuses to serve without --upstream (one line, exit 2: no engine inside), then run it with a
# read-only root in front of a real vLLM OpenAI server on the tiny model (started here, on the
# host, on loopback) and check that it serves: /ready within a bound, a chat completion, a stream,
# a precise vote whose samples all ran on the vLLM server, a non-root user, the HEALTHCHECK, and a
# clean exit on SIGTERM. Prints the image size and the time from `podman run` to /ready.
#
# podman on machines without a Docker engine or a registry: scripts/lib/podman.sh.
# Removes the container and the vLLM server it started, whatever happens; keeps the image.
#
# Exit status: 0 passed, 77 podman cannot run here (callers skip), anything else failed.
#
# Environment:
#   QUORUM_SMOKE_PYTHON         interpreter with vLLM, for the upstream server (default .venv's)
#   QUORUM_SMOKE_IMAGE          tag to build (default localhost/quorum:gateway-smoke)
#   QUORUM_SMOKE_MAX_MB         largest acceptable image, in MB (default 300)
#   QUORUM_SMOKE_READY_TIMEOUT  seconds to wait for the vLLM server and for /ready (default 600)
#   QUORUM_CACHE_DIR            where the tiny model is built (default ~/.cache/quorum)
#   QUORUM_SMOKE_DEBIAN_MIRROR, PIP_CERT, PIP_FIND_LINKS: as for scripts/container_smoke.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${QUORUM_SMOKE_IMAGE:-localhost/quorum:gateway-smoke}"
python="${QUORUM_SMOKE_PYTHON:-$root/.venv/bin/python}"
max_mb="${QUORUM_SMOKE_MAX_MB:-300}"
ready_timeout="${QUORUM_SMOKE_READY_TIMEOUT:-600}"
cache="${QUORUM_CACHE_DIR:-$HOME/.cache/quorum}"
container="quorum-gateway-smoke-$$"
say() { printf '[gateway-smoke] %s\n' "$*" >&2; }
skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/quorum-gateway-smoke.XXXXXX")"
vllm_pid=""
# shellcheck source=scripts/lib/podman.sh
source "$root/scripts/lib/podman.sh"
cleanup() {
  local status=$?
  podman_cleanup "$status"
  if [[ -n "$vllm_pid" ]]; then
    [[ $status -ne 0 ]] && tail -10 "$work/vllm.log" >&2
    kill -TERM -- "-$vllm_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 -- "-$vllm_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$vllm_pid" 2>/dev/null || true
    say "stopped the vLLM server"
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$python" -c 'import vllm' 2>/dev/null \
  || fail "$python has no vLLM for the upstream server (run scripts/setup.sh, or set QUORUM_SMOKE_PYTHON)"

# 1-5. podman, its configuration, the base image, pip's sources, the build (scripts/lib/podman.sh).
podman_install
podman_configure
podman_base_image
podman_pip_sources
podman_build Dockerfile.gateway
((size_bytes <= max_mb * 1000000)) || fail "the image is $size, over ${max_mb} MB"

# 6. No engine inside: without --upstream the server says which extra it needs, and exits 2.
set +e
timeout 60 podman run --rm --read-only --no-healthcheck "$image" \
  >"$work/slim.out" 2>"$work/slim.err"
code=$?
set -e
[[ $code == 2 ]] || fail "without --upstream: exit $code, expected 2: $(cat "$work/slim.err")"
[[ "$(wc -l <"$work/slim.err")" == 1 ]] && grep -q "quorum\[cpu\]" "$work/slim.err" \
  || fail "without --upstream, expected one line naming the extra: $(cat "$work/slim.err")"
say "without --upstream: exit 2, '$(cat "$work/slim.err")'"

# 7. The upstream: vLLM's own OpenAI server on the tiny model, on the host's loopback.
model="$("$python" -m quorum.cli prepare-model --tiny "$cache/test-models/tiny-llama")"
vllm_port="$(free_port)"
mkdir "$work/vllm-tmp"
say "starting vLLM on 127.0.0.1:$vllm_port (log: $work/vllm.log)"
VLLM_CPU_KVCACHE_SPACE=1 VLLM_CPU_OMP_THREADS_BIND=0-1 HF_HUB_OFFLINE=1 TMPDIR="$work/vllm-tmp" \
  VLLM_CACHE_ROOT="$cache/vllm" TORCHINDUCTOR_CACHE_DIR="$cache/inductor" \
  setsid "$python" -m vllm.entrypoints.openai.api_server --model "$model" \
  --served-model-name tiny-llama --dtype float32 --enforce-eager --max-model-len 512 \
  --max-num-seqs 8 --no-enable-chunked-prefill --host 127.0.0.1 --port "$vllm_port" \
  >"$work/vllm.log" 2>&1 &
vllm_pid=$!
vllm_running() { kill -0 "$vllm_pid" 2>/dev/null; }
wait_for_200 "http://127.0.0.1:$vllm_port/v1/models" "$ready_timeout" vllm_running
say "vLLM ready after ${waited_seconds} s"
served() {
  curl -s "http://127.0.0.1:$vllm_port/metrics" \
    | awk '/^vllm:request_success_total\{/ {s += $2} END {print s + 0}'
}

# 8. The gateway as Kubernetes runs it: read-only root, only /tmp writable, non-root. The host's
# network, so that it reaches the vLLM server on loopback; it listens on loopback only.
port="$(free_port)"
url="http://127.0.0.1:$port"
started_container="$container"
t_run=$EPOCHREALTIME
podman run -d --name "$container" --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m \
  --network host -e QUORUM_HOST=127.0.0.1 -e "QUORUM_PORT=$port" --health-interval disable \
  "$image" --upstream "http://127.0.0.1:$vllm_port/v1" >/dev/null 2>"$work/run.err" || {
  cat "$work/run.err" >&2
  fail "podman run failed"
}
container_running() { [[ "$(podman inspect --format '{{.State.Running}}' "$container")" == true ]]; }
wait_for_200 "$url/ready" "$ready_timeout" container_running
ready_seconds="$(python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$t_run" "$EPOCHREALTIME")"
say "gateway ready after ${ready_seconds} s"

uid="$(podman exec "$container" id -u)"
[[ "$uid" =~ ^[0-9]+$ && "$uid" -ne 0 ]] || fail "the server runs as uid '$uid'"
podman healthcheck run "$container" >/dev/null || fail "the image's HEALTHCHECK fails on a ready server"
say "uid $uid (not root); HEALTHCHECK passes"

post() {  # post PATH BODY OUTFILE -> HTTP status
  curl -sS -o "$3" -w '%{http_code}' --max-time 120 -H 'content-type: application/json' \
    -d "$2" "$url$1"
}
messages='[{"role": "user", "content": "hello there"}]'
status="$(post /v1/chat/completions "{\"model\": \"tiny-llama\", \"messages\": $messages, \"max_tokens\": 8}" "$work/chat.json")"
[[ "$status" == 200 ]] || fail "chat completion answered $status: $(head -c 1000 "$work/chat.json")"
status="$(post /v1/chat/completions "{\"model\": \"tiny-llama\", \"messages\": $messages, \"max_tokens\": 8, \"stream\": true}" "$work/stream.txt")"
[[ "$status" == 200 && "$(grep -c '^data: ' "$work/stream.txt")" -ge 2 && "$(tail -2 "$work/stream.txt")" == *"data: [DONE]"* ]] \
  || fail "stream answered $status: $(head -c 1000 "$work/stream.txt")"
before="$(served)"
status="$(post /v1/precise "{\"messages\": $messages, \"samples\": 3, \"seed\": 1, \"max_tokens\": 8}" "$work/precise.json")"
[[ "$status" == 200 ]] || fail "/v1/precise answered $status: $(head -c 1000 "$work/precise.json")"
used="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["samples_used"])' "$work/precise.json")"
added="$(python3 -c 'import sys; print(int(float(sys.argv[2]) - float(sys.argv[1])))' "$before" "$(served)")"
[[ "$used" == 3 && "$added" == 3 ]] || fail "precise: $used samples used, $added served by vLLM (expected 3 and 3)"
say "chat, stream and a precise vote of 3 samples (3 sequences served by vLLM) through the gateway"

# 9. A clean stop on SIGTERM.
t_stop=$SECONDS
podman stop -t 45 "$container" >/dev/null 2>&1
stop_seconds=$((SECONDS - t_stop))
code="$(podman inspect --format '{{.State.ExitCode}}' "$container")"
[[ "$code" == 0 ]] || fail "exit status $code after SIGTERM (expected 0)"

echo "gateway smoke test passed"
echo "build time: ${build_seconds} s"
echo "image size: $size ($image; limit ${max_mb} MB)"
echo "ready after: ${ready_seconds} s (podman run to /ready, vLLM already up)"
echo "stop on SIGTERM: ${stop_seconds} s"
