#!/usr/bin/env bash
# Container smoke test: build docker/Dockerfile.cpu with podman, run the image on loopback with a
# read-only root filesystem, and check that it serves: /ready within a bound, /v1/precise answers
# "What is 2+3?" with 5, the process is not root. Removes the container it started, whatever
# happens, and the untagged images its build left; keeps the final image. Prints timings.
#
# Machines without a Docker engine or a registry are handled here, not in
# the Dockerfile: podman is installed if missing (root + apt-get), runc and explicit ulimits come
# from a private CONTAINERS_CONF, a Debian base image is built with debootstrap under the name the
# Dockerfile uses when it is not present, and pip in the build gets the host's CA bundle and wheel
# folders as build-time mounts (never copied into the image).
#
# Exit status: 0 passed, 77 podman cannot run here (callers skip), anything else failed.
#
# Environment:
#   QUORUM_SMOKE_IMAGE          tag to build (default localhost/quorum:cpu-smoke)
#   QUORUM_SMOKE_PORT           loopback port to publish (default: a free one)
#   QUORUM_SMOKE_READY_TIMEOUT  seconds to wait for /ready (default 600)
#   QUORUM_SMOKE_DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
#   QUORUM_TORCH_INDEX          PyTorch CPU index for the build (default: none when the host's pip
#                               find-links hold the +cpu torch wheel, else PyTorch's CPU index)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image="${QUORUM_SMOKE_IMAGE:-localhost/quorum:cpu-smoke}"
base_image="docker.io/library/debian:bookworm-slim"
ready_timeout="${QUORUM_SMOKE_READY_TIMEOUT:-600}"
container="quorum-smoke-$$"
say() { printf '[smoke] %s\n' "$*" >&2; }
skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/quorum-smoke.XXXXXX")"
started_container=""
images_before=""
old_image_id=""
cleanup() {
  local status=$?
  if [[ -n "$started_container" ]]; then
    if [[ $status -ne 0 ]]; then
      say "container logs (last 60 lines):"
      podman logs --tail 60 "$started_container" >&2 2>&1 || true
    fi
    podman rm -f -t 5 "$started_container" >/dev/null 2>&1 || true
    say "removed container $started_container"
  fi
  if [[ -n "$images_before" ]]; then
    remove_build_leftovers || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. podman (and what this script needs besides).
need=()
for tool in podman curl python3; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
if ((${#need[@]})); then
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    skip "missing ${need[*]}, and this is not root with apt-get to install them"
  fi
  say "installing ${need[*]} and podman's helpers with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq podman buildah runc uidmap slirp4netns fuse-overlayfs debootstrap \
    curl python3 >&2 || skip "apt-get could not install podman here"
fi

# 2. A private containers.conf: runc (crun refuses hybrid cgroup layouts) and explicit ulimits
# (podman's defaults ask for more than these machines allow; higher nproc values are refused even
# below the host's hard limit), capped by the host's hard limits.
hard_limit() {
  local value
  value="$(ulimit -H "$1")"
  if [[ "$value" == unlimited || "$value" -gt "$2" ]]; then value="$2"; fi
  echo "$value"
}
nofile="$(hard_limit -n 20000)"
nproc="$(hard_limit -u 32768)"
{
  echo "[containers]"
  echo "default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]"
  if command -v runc >/dev/null 2>&1; then
    echo "[engine]"
    echo "runtime = \"runc\""
  fi
} >"$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"
podman info >/dev/null 2>"$work/podman-info.err" || {
  cat "$work/podman-info.err" >&2
  fail "podman is installed but does not work"
}

# 3. The base image, built from Debian's packages when no registry provides it.
if ! podman image exists "$base_image"; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
      fail "$base_image is missing and debootstrap is not installed"
    fi
    apt-get install -y -qq debootstrap >&2
  fi
  mirror="${QUORUM_SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  say "building $base_image with debootstrap from $mirror"
  t0=$SECONDS
  rootfs="$work/rootfs"
  mkdir "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    fail "debootstrap failed"
  }
  # Like the registry's image: updates and security sources, no package lists or caches.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$base_image" >/dev/null
  rm -rf "$rootfs"
  say "base image built in $((SECONDS - t0)) s"
fi

# 4. pip's sources in the build: the host's CA bundle and local wheel folders, mounted read-only.
host_pip() { python3 -m pip config get "$1" 2>/dev/null || true; }
build_opts=()
cert="${PIP_CERT:-$(host_pip global.cert)}"
[[ -z "$cert" && -f /etc/ssl/certs/ca-certificates.crt ]] && cert=/etc/ssl/certs/ca-certificates.crt
if [[ -n "$cert" && -f "$cert" ]]; then
  build_opts+=(-v "$cert:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
fi
find_links=()
for dir in ${PIP_FIND_LINKS:-$(host_pip global.find-links)}; do
  [[ -d "$dir" ]] && find_links+=("$dir") && build_opts+=(-v "$dir:$dir:ro")
done
torch_index="${QUORUM_TORCH_INDEX-}"
if [[ -z "${QUORUM_TORCH_INDEX+set}" ]]; then
  torch_index="https://download.pytorch.org/whl/cpu"
  if ((${#find_links[@]})) && compgen -G "${find_links[0]}/torch-*+cpu-*.whl" >/dev/null; then
    torch_index=""  # the host's wheel folder has it; an unreachable index would only stall pip
  fi
fi
build_opts+=(--build-arg "PIP_FIND_LINKS=${find_links[*]}" --build-arg "TORCH_INDEX_URL=$torch_index")
say "pip in the build: CA ${cert:-default}, find-links '${find_links[*]}', torch index '${torch_index:-none}'"

# 5. Build. Images this build leaves untagged are removed at exit (the final image is kept), and
# so is the image the tag named before, once the new build has taken the tag.
image_ids() { podman images -a -q --no-trunc | sed 's/^sha256://' | sort -u; }
remove_build_leftovers() {
  local keep id candidates=() removable=()
  keep="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  mapfile -t candidates < <(comm -13 <(echo "$images_before") <(image_ids))
  [[ -n "$old_image_id" ]] && candidates+=("$old_image_id")
  for id in "${candidates[@]}"; do
    [[ -n "$id" && "$id" != "$keep" ]] || continue
    # Only untagged images: never one that someone else tagged meanwhile.
    [[ "$(podman image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null || echo gone)" == 0 ]] \
      && removable+=("$id")
  done
  if ((${#removable[@]})); then
    # Children before parents: a second pass removes what the first could not.
    for _ in 1 2; do
      podman rmi "${removable[@]}" >/dev/null 2>&1 || true
    done
    say "removed ${#removable[@]} untagged build images"
  fi
}
images_before="$(image_ids)"
old_image_id="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
say "building $image from docker/Dockerfile.cpu (log: $work/build.log)"
t0=$SECONDS
if ! podman build --format docker --layers \
  --ignorefile "$root/docker/Dockerfile.cpu.dockerignore" \
  "${build_opts[@]}" \
  -t "$image" -f "$root/docker/Dockerfile.cpu" "$root" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&2
  fail "podman build failed"
fi
build_seconds=$((SECONDS - t0))
remove_build_leftovers
size_bytes="$(podman image inspect --format '{{.Size}}' "$image")"
size="$(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e9:.2f} GB')" "$size_bytes")"
say "built in ${build_seconds} s; image size $size"

# 6. Run it as Kubernetes would: read-only root, a writable cache, loopback only.
port="${QUORUM_SMOKE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
url="http://127.0.0.1:$port"
t_run=$SECONDS
started_container="$container"
# --shm-size: vLLM's engine processes talk through /dev/shm (podman's default 64 MB is too small).
# The health check is run once by hand below (its timer would need systemd).
podman run -d --name "$container" --read-only --shm-size 1g \
  --mount type=tmpfs,destination=/var/cache/quorum,U=true \
  --health-interval disable \
  -p "127.0.0.1:$port:8000" "$image" >/dev/null 2>"$work/run.err" || {
  cat "$work/run.err" >&2
  fail "podman run failed"
}
say "started $container on $url; waiting for /ready (at most ${ready_timeout} s)"
deadline=$((SECONDS + ready_timeout))
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/ready" || true)" == 200 ]]; do
  if [[ "$(podman inspect --format '{{.State.Running}}' "$container")" != true ]]; then
    fail "the container exited before it was ready"
  fi
  ((SECONDS < deadline)) || fail "not ready after ${ready_timeout} s"
  sleep 2
done
ready_seconds=$((SECONDS - t_run))
say "ready after ${ready_seconds} s"

uid="$(podman exec "$container" id -u)"
[[ "$uid" =~ ^[0-9]+$ && "$uid" -ne 0 ]] || fail "the server runs as uid '$uid'"
say "server runs as uid $uid (not root)"
podman healthcheck run "$container" >/dev/null || fail "the image's HEALTHCHECK fails on a ready server"
say "HEALTHCHECK passes"

# 7. The question, as the end-to-end tests ask it of the same model: a seeded vote of 5 samples.
# /v1/precise is the check; while that route does not exist yet (404), a greedy chat completion
# stands in for it, and the output says so.
question='[{"role": "user", "content": "What is 2+3? Reply with just the number."}]'
status="$(curl -sS -o "$work/precise.json" -w '%{http_code}' --max-time 300 \
  -H 'content-type: application/json' \
  -d "{\"messages\": $question, \"samples\": 5, \"seed\": 1, \"temperature\": 0.2, \"max_tokens\": 32}" \
  "$url/v1/precise")"
if [[ "$status" == 200 ]]; then
  answer="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["answer"])' "$work/precise.json")"
  say "POST /v1/precise 'What is 2+3?' (5 samples, seed 1) -> answer '$answer'"
  [[ "$answer" == 5 ]] || fail "expected 5; response: $(head -c 2000 "$work/precise.json")"
elif [[ "$status" == 404 ]]; then
  say "POST /v1/precise -> 404: the route is not there yet; FALLBACK to /v1/chat/completions at temperature 0"
  status="$(curl -sS -o "$work/chat.json" -w '%{http_code}' --max-time 300 \
    -H 'content-type: application/json' \
    -d "{\"model\": \"SmolLM2-135M-Instruct\", \"messages\": $question, \"temperature\": 0, \"max_tokens\": 32}" \
    "$url/v1/chat/completions")"
  [[ "$status" == 200 ]] || fail "chat completions answered $status: $(head -c 2000 "$work/chat.json")"
  text="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["choices"][0]["message"]["content"])' "$work/chat.json")"
  say "POST /v1/chat/completions 'What is 2+3?' (temperature 0) -> '$text'"
  python3 -c 'import re, sys; nums = re.findall(r"-?\d+(?:\.\d+)?", sys.argv[1]); sys.exit(not nums or nums[-1] != "5")' "$text" \
    || fail "expected the last number in the reply to be 5"
else
  fail "/v1/precise answered $status: $(head -c 2000 "$work/precise.json")"
fi

# 8. A clean stop: SIGTERM drains and exits 0 well within compose's and Kubernetes' grace periods.
t_stop=$SECONDS
podman stop -t 45 "$container" >/dev/null 2>&1
stop_seconds=$((SECONDS - t_stop))
code="$(podman inspect --format '{{.State.ExitCode}}' "$container")"
[[ "$code" == 0 ]] || fail "exit status $code after SIGTERM (expected 0)"
say "stopped cleanly on SIGTERM in ${stop_seconds} s"
smoke_seconds=$((SECONDS - t_run))

echo "container smoke test passed"
echo "build time: ${build_seconds} s"
echo "image size: $size ($image)"
echo "ready after: ${ready_seconds} s"
echo "stop on SIGTERM: ${stop_seconds} s"
echo "smoke test time (start to clean stop): ${smoke_seconds} s"
