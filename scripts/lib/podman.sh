# Podman on machines without a Docker engine or a registry, for the container smoke tests
# (scripts/container_smoke.sh, scripts/gateway_smoke.sh). Sourced, not run. Handles, outside the
# Dockerfiles: installing podman (root + apt-get), runc and explicit ulimits through a private
# CONTAINERS_CONF, a Debian base image built with debootstrap under the name the Dockerfiles use,
# pip's CA bundle and wheel folders as build-time mounts (never copied into an image), and
# removing the untagged images a build leaves.
#
# The caller sets: root (the repository), work (a scratch folder it removes), image (the tag to
# build), and defines say, skip (exit 77) and fail. Functions set globals the caller reads:
# build_opts, build_seconds, size, size_bytes; the caller sets started_container once it runs one.

base_image="docker.io/library/debian:bookworm-slim"
images_before=""
old_image_id=""
started_container=""

# For the caller's exit trap: the container's last log lines if the script failed (STATUS), then
# the container and the build's leftovers are removed.
podman_cleanup() {
  local status="$1"
  if [[ -n "$started_container" ]]; then
    if [[ $status -ne 0 ]]; then
      say "container logs (last 60 lines):"
      podman logs --tail 60 "$started_container" >&2 2>&1 || true
    fi
    podman rm -f -t 5 "$started_container" >/dev/null 2>&1 || true
    say "removed container $started_container"
  fi
  podman_remove_build_leftovers || true
}

# 1. podman (and what the scripts need besides).
podman_install() {
  local tool need=()
  for tool in podman curl python3; do
    command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
  done
  ((${#need[@]})) || return 0
  if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    skip "missing ${need[*]}, and this is not root with apt-get to install them"
  fi
  say "installing ${need[*]} and podman's helpers with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq podman buildah runc uidmap slirp4netns fuse-overlayfs debootstrap \
    curl python3 >&2 || skip "apt-get could not install podman here"
}

# 2. A private containers.conf: runc (crun refuses hybrid cgroup layouts) and explicit ulimits
# (podman's defaults ask for more than these machines allow; higher nproc values are refused even
# below the host's hard limit), capped by the host's hard limits.
podman_configure() {
  local nofile nproc
  nofile="$(_hard_limit -n 20000)"
  nproc="$(_hard_limit -u 32768)"
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
}

_hard_limit() {
  local value
  value="$(ulimit -H "$1")"
  if [[ "$value" == unlimited || "$value" -gt "$2" ]]; then value="$2"; fi
  echo "$value"
}

# 3. The base image, built from Debian's packages when no registry provides it.
podman_base_image() {
  podman image exists "$base_image" && return 0
  if ! command -v debootstrap >/dev/null 2>&1; then
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
      fail "$base_image is missing and debootstrap is not installed"
    fi
    apt-get install -y -qq debootstrap >&2
  fi
  local mirror="${QUORUM_SMOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  local t0=$SECONDS rootfs="$work/rootfs"
  say "building $base_image with debootstrap from $mirror"
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
}

# 4. pip's sources in the build: the host's CA bundle and local wheel folders, mounted read-only.
# Sets build_opts.
podman_pip_sources() {
  local cert dir torch_index find_links=()
  build_opts=()
  cert="${PIP_CERT:-$(_host_pip global.cert)}"
  [[ -z "$cert" && -f /etc/ssl/certs/ca-certificates.crt ]] && cert=/etc/ssl/certs/ca-certificates.crt
  if [[ -n "$cert" && -f "$cert" ]]; then
    build_opts+=(-v "$cert:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
  fi
  for dir in ${PIP_FIND_LINKS:-$(_host_pip global.find-links)}; do
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
}

_host_pip() { python3 -m pip config get "$1" 2>/dev/null || true; }

# 5. Build DOCKERFILE (a path under docker/) into $image. Images this build leaves untagged are
# removed (the final image is kept), and so is the image the tag named before, once the new build
# has taken the tag; call podman_remove_build_leftovers again from the caller's exit trap.
# Sets build_seconds, size_bytes and size.
podman_build() {
  local dockerfile="$1" t0
  images_before="$(_image_ids)"
  old_image_id="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  say "building $image from docker/$dockerfile (log: $work/build.log)"
  t0=$SECONDS
  if ! podman build --format docker --layers \
    --ignorefile "$root/docker/$dockerfile.dockerignore" \
    "${build_opts[@]}" \
    -t "$image" -f "$root/docker/$dockerfile" "$root" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    fail "podman build failed"
  fi
  build_seconds=$((SECONDS - t0))
  podman_remove_build_leftovers
  size_bytes="$(podman image inspect --format '{{.Size}}' "$image")"
  size="$(python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e6:.0f} MB')" "$size_bytes")"
  say "built in ${build_seconds} s; image size $size"
}

_image_ids() { podman images -a -q --no-trunc | sed 's/^sha256://' | sort -u; }

podman_remove_build_leftovers() {
  [[ -n "$images_before" ]] || return 0
  local keep id candidates=() removable=()
  keep="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  mapfile -t candidates < <(comm -13 <(echo "$images_before") <(_image_ids))
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

# A free loopback port.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Poll URL until it answers 200, for at most TIMEOUT seconds, while the check command
# (e.g. "container is running") succeeds. Sets waited_seconds.
wait_for_200() {
  local url="$1" timeout="$2" alive="$3" t0=$SECONDS
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)" == 200 ]]; do
    $alive || fail "gone before $url answered 200"
    ((SECONDS - t0 < timeout)) || fail "$url did not answer 200 within ${timeout} s"
    sleep 0.2
  done
  waited_seconds=$((SECONDS - t0))
}
