#!/usr/bin/env bash
# Builds a minimal Debian bookworm image with python3 + venv + pip from the Debian archive (debootstrap),
# for machines that can reach apt but no image registry. The rootfs tarball is cached, so a second call
# only re-imports it (or does nothing if the image exists).
#   docker/make_base_image.sh [TAG]        default TAG: xtreme-transfer-base:bookworm
# Env: XT_DOCKER_CACHE (default ~/.cache/xtreme-transfer/docker), DEBIAN_MIRROR, DOCKER (client binary).
set -euo pipefail
tag=${1:-xtreme-transfer-base:bookworm}
docker=${DOCKER:-docker}
cache=${XT_DOCKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xtreme-transfer/docker}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tarball=$cache/bookworm-python3-rootfs.tar

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists"; exit 0
fi
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; }
  rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$mirror"
  # Keep the image small and free of the build machine's apt state.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
         "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$tarball" "$tag"
echo "base image $tag imported from $tarball"
