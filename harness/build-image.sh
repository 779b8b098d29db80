#!/usr/bin/env bash
# Builds a load balancer image without a registry: the given Debian
# bookworm packages and their dependencies, unpacked by mmdebstrap into a
# root filesystem and imported into the local Docker engine.
#   build-image.sh TAG PACKAGES NAME BINARY
#   e.g. build-image.sh mtlsconform/nginx:bookworm nginx-light nginx nginx
# The harness runs this (it is embedded in the Go binary) when a tag is
# missing; it is safe to run by hand too.
#
# The packages are unpacked, not installed (mmdebstrap's extract variant):
# no maintainer script runs, which makes a build about five times faster
# than a full install of the Essential set (about 10 s against 45 s on two
# cores). What those scripts would have done and a balancer needs is done
# here: /etc/passwd and /etc/group from base-passwd (workers run as
# nobody or www-data). The balancers read only what the harness renders
# under /etc/mtlsconform, never Debian's own configuration, and dash and
# coreutils are there for the commands the harness runs inside (Caddy's
# slot starter), bash for its /dev/tcp: the harness asks it whether the
# containers reach the backend it serves on this machine. Before the image is imported, BINARY must be found in it
# with every library it links to, or the build fails saying which is missing.
set -euo pipefail
usage='usage: build-image.sh TAG PACKAGES NAME BINARY'
tag=${1:?$usage}
packages=${2:?$usage}
name=${3:?$usage}
binary=${4:?$usage}
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

# The extract hooks run (after unpacking) with the root filesystem's path as $1.
# shellcheck disable=SC2016
accounts='cp "$1/usr/share/base-passwd/passwd.master" "$1/etc/passwd" &&
  cp "$1/usr/share/base-passwd/group.master" "$1/etc/group"'
cat >"$work/check.sh" <<'CHECK'
# check.sh ROOT BINARY PACKAGES: BINARY is in ROOT with all its libraries.
root=$1 binary=$2 packages=$3
path=$(chroot "$root" /bin/sh -c 'command -v "$0"' "$binary") || {
  echo "build-image.sh: $binary is not in the image; the packages ($packages) do not hold it" >&2
  exit 1
}
# The loader's --verify: 0 for a dynamically linked executable.
if chroot "$root" /lib64/ld-linux-x86-64.so.2 --verify "$path" >/dev/null 2>&1; then
  if missing=$(chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "$path" 2>&1 | grep 'not found'); then
    echo "build-image.sh: $path in the image lacks libraries; add their packages to the implementation's Packages and its lb/<name>/image.tsv:" >&2
    echo "$missing" >&2
    exit 1
  fi
fi
CHECK

# The recipe label names this script and the packages: the harness and
# build-images.sh rebuild an image whose recipe is not the current one
# (harness/images.go: imageRecipe computes the same).
recipe=$({ cat "$0"; printf '%s\n' "$packages"; } | sha256sum | cut -c1-16)

mmdebstrap --quiet --variant=extract \
  --include="base-passwd,dash,bash,coreutils,libc6,$packages" \
  --extract-hook="$accounts" \
  --extract-hook="sh $work/check.sh \"\$1\" $binary \"$packages\"" \
  --format=tar "$suite" "$work/rootfs.tar"

docker import \
  --change "LABEL org.mtlsconform.image=$name" \
  --change "LABEL org.mtlsconform.recipe=$recipe" \
  "$work/rootfs.tar" "$tag" >/dev/null
echo "built $tag"
