#!/usr/bin/env bash
# Builds the named reference images that are missing (nginx, haproxy,
# apache, caddy …, and "all", the matrix's image with every one of them;
# every image when none is named), from each implementation's
# lb/<name>/image.tsv, with harness/build-image.sh. It holds the same lock
# as the harness while it builds, so a run that starts meanwhile waits for
# the image instead of building it again: scripts/run builds the nginx
# image this way while the CLI compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
SAY_PREFIX=images
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

lockdir=${XDG_CACHE_HOME:-$HOME/.cache}/mtlsconform
mkdir -p "$lockdir"
chmod 700 "$lockdir"
status=0
# build NAME IMAGE PACKAGES BINARY: builds IMAGE unless it is there, of
# the same recipe.
build() {
  local name=$1 image=$2 packages=$3 binary=$4
  # What build-image.sh labels its image with (harness/images.go:
  # imageRecipe): an image of another recipe is built again.
  recipe=$({ cat harness/build-image.sh; printf '%s\n' "$packages"; } | sha256sum | cut -c1-16)
  old=$(docker image inspect -f '{{.Id}} {{index .Config.Labels "org.mtlsconform.recipe"}}' "$image" 2>/dev/null || true)
  [ "${old#* }" = "$recipe" ] && return 0
  what="building $image from Debian packages (mmdebstrap; about 10 s, once)"
  [ -n "$old" ] && what="rebuilding $image: it was built from an older recipe (about 10 s)"
  # The harness's lock (harness/images.go: lockImages) taken by flock(1);
  # under it, the image is looked at again: a run may have built it.
  step "$what" \
    flock "$lockdir/images.lock" sh -c '
      [ "$(docker image inspect -f "{{index .Config.Labels \"org.mtlsconform.recipe\"}}" "$1" 2>/dev/null)" = "$5" ] ||
        bash harness/build-image.sh "$1" "$2" "$3" "$4"' _ "$image" "$packages" "$name" "$binary" "$recipe" ||
    status=$?
  # The older build, untagged now (kept where a container still runs it).
  [ -n "$old" ] && docker image rm "${old%% *}" >/dev/null 2>&1 || true
}
union=()
while IFS=$'\t' read -r name image packages binary; do
  case $name in '' | '#'*) continue ;; esac
  read -ra pkgs <<<"$packages"
  union+=("${pkgs[@]}")
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  build "$name" "$image" "$packages" "$binary"
done < <(cat lb/*/image.tsv)
# The matrix's one container for every implementation's balancer
# (harness/cohost.go: coImageSpec): every package, sorted, and the
# default implementation's binary to prove it whole.
if [ $# -eq 0 ] || [[ " $* " == *" all "* ]]; then
  build all mtlsconform/all:bookworm "$(printf '%s\n' "${union[@]}" | LC_ALL=C sort -u | paste -sd ' ')" nginx
fi
exit "$status"
