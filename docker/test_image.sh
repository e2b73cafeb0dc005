#!/usr/bin/env bash
# End-to-end check of the image, for machines with apt but no image registry:
#   1. a Docker engine (starts dockerd in the background if none answers; stops it again at the end),
#   2. a local Debian bookworm base image (docker/make_base_image.sh: debootstrap -> docker import, cached),
#   3. docker build with BASE_IMAGE set to it (BuildKit; the host's extra CAs go in as the build secret `ca`),
#   4. docker run PRESET (default smoke) without network, results in a mounted folder,
#   5. checks that the report (report.md, plots) is in that folder.
# Env: XT_IMAGE (tag, default xtreme-transfer:test), XT_BASE_IMAGE (skip step 2 and use this base),
#      XT_JAX_EXTRA (cpu), XT_CA_FILE (PEM for the build secret; default: /usr/local/share/ca-certificates/*.crt),
#      XT_DOCKER_WORK (logs + results, default .docker-build/), XT_PRESET (smoke).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${XT_DOCKER_WORK:-$root/.docker-build}
image=${XT_IMAGE:-xtreme-transfer:test}
preset=${XT_PRESET:-smoke}
mkdir -p "$work"
say() { printf '[test_image %(%H:%M:%S)T] %s\n' -1 "$*"; }

# 1. engine ------------------------------------------------------------------------------------------
dockerd_pid=""
cleanup() {
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd this script started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null; then
    say "installing docker.io"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >"$work/apt.log" 2>&1
  fi
  say "starting dockerd (log: $work/dockerd.log)"
  dockerd >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not come up"; tail -20 "$work/dockerd.log"; exit 1; }
fi
# BuildKit: through buildx if the client has it, else a client with BuildKit built in (Docker < 23).
docker_build=(docker build)
if ! docker buildx version >/dev/null 2>&1; then
  if [ -x /usr/bin/docker ] && /usr/bin/docker version --format '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
    docker_build=(/usr/bin/docker build)
  else
    say "no BuildKit client: install docker-buildx"; exit 1
  fi
fi
export DOCKER_BUILDKIT=1

# 2. base image --------------------------------------------------------------------------------------
base=${XT_BASE_IMAGE:-}
if [ -z "$base" ]; then
  base=xtreme-transfer-base:bookworm
  start=$SECONDS
  "$root/docker/make_base_image.sh" "$base" >"$work/base.log" 2>&1 || { tail -20 "$work/base.log"; exit 1; }
  say "base image $base ready ($((SECONDS - start)) s)"
fi

# 3. build -------------------------------------------------------------------------------------------
secret=()
ca=${XT_CA_FILE:-}
if [ -z "$ca" ] && compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  ca=$work/extra-ca.pem
  cat /usr/local/share/ca-certificates/*.crt >"$ca"
fi
[ -n "$ca" ] && secret=(--secret "id=ca,src=$ca")
start=$SECONDS
say "building $image (log: $work/build.log)"
if ! "${docker_build[@]}" --progress=plain --build-arg "BASE_IMAGE=$base" \
     --build-arg "JAX_EXTRA=${XT_JAX_EXTRA:-cpu}" --build-arg "GIT_COMMIT=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)" \
     "${secret[@]}" -t "$image" "$root" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log"; say "build FAILED"; exit 1
fi
size=$(docker image inspect -f '{{.Size}}' "$image")
say "built $image in $((SECONDS - start)) s, size $((size / 1000000)) MB"

# 4. run ---------------------------------------------------------------------------------------------
results=$(mktemp -d "$work/results.XXXXXX")
mkdir -p "$work/hf-cache"
chmod 0777 "$results" "$work/hf-cache"     # the container runs as uid 1000
start=$SECONDS
say "docker run $image $preset (no network; log: $work/run.log)"
if ! docker run --rm --network none -v "$results:/results" -v "$work/hf-cache:/hf-cache" "$image" "$preset" \
     >"$work/run.log" 2>&1; then
  tail -40 "$work/run.log"; say "run FAILED"; exit 1
fi
say "run finished in $((SECONDS - start)) s"

# 5. the report --------------------------------------------------------------------------------------
report=$(find "$results" -name report.md -path '*report*' | head -1)
if [ -z "$report" ]; then
  find "$results" -maxdepth 3 | head -30; say "no report.md under $results"; exit 1
fi
pngs=$(find "$(dirname "$report")/plots" -name '*.png' -size +1k | wc -l)
[ "$pngs" -gt 0 ] || { say "no plots next to $report"; exit 1; }
head -3 "$report"
say "OK: $report ($pngs plots)"
