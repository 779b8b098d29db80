#!/usr/bin/env bash
# Builds a load balancer image without a registry: a Debian bookworm root
# filesystem holding the given packages, made by mmdebstrap and imported
# into the local Docker engine.
#   build-image.sh TAG PACKAGES NAME
#   e.g. build-image.sh mtlsconform/nginx:bookworm nginx-light,ca-certificates nginx
# The harness runs this (it is embedded in the Go binary) when a tag is
# missing; it is safe to run by hand too.
set -euo pipefail
tag=${1:?usage: build-image.sh TAG PACKAGES NAME}
packages=${2:?usage: build-image.sh TAG PACKAGES NAME}
name=${3:-$tag}
suite=${MTLSCONFORM_DEBIAN_SUITE:-bookworm}

if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "mmdebstrap is not installed: run 'apt-get install -y mmdebstrap' (or scripts/prereqs.sh) and try again" >&2
  exit 3
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "the docker command is not installed: run scripts/prereqs.sh and try again" >&2
  exit 3
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mtlsconform-image-build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

mmdebstrap --quiet --variant=essential \
  --include="$packages" \
  --format=tar "$suite" "$work/rootfs.tar"

docker import \
  --change "LABEL org.mtlsconform.image=$name" \
  "$work/rootfs.tar" "$tag" >/dev/null
echo "built $tag"
