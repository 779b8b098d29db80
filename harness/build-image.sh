#!/usr/bin/env bash
# Builds the reference load balancer image without a registry: a Debian
# bookworm root filesystem holding nginx-light, made by mmdebstrap and
# imported into the local Docker engine under the tag given as $1.
# The harness runs this (it is embedded in the Go binary) when the tag is
# missing; it is safe to run by hand too.
set -euo pipefail
tag=${1:-mtlsconform/nginx:bookworm}
suite=${MTLSCONFORM_DEBIAN_SUITE:-bookworm}

if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "mmdebstrap is not installed: run 'apt-get install -y mmdebstrap' (or scripts/prereqs.sh) and try again" >&2
  exit 3
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "the docker command is not installed: run scripts/prereqs.sh and try again" >&2
  exit 3
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mtlsconform-nginx-build.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

mmdebstrap --quiet --variant=essential \
  --include=nginx-light,ca-certificates \
  --format=tar "$suite" "$work/rootfs.tar"

docker import \
  --change 'CMD ["nginx", "-g", "daemon off;"]' \
  --change 'LABEL org.mtlsconform.image=nginx' \
  "$work/rootfs.tar" "$tag" >/dev/null
echo "built $tag"
