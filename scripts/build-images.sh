#!/usr/bin/env bash
# Builds the named reference images that are missing (nginx, haproxy,
# apache, caddy …; all when none is named), from each implementation's
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
while IFS=$'\t' read -r name image packages binary; do
  case $name in '' | '#'*) continue ;; esac
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  # What build-image.sh labels its image with (harness/images.go:
  # imageRecipe): an image of another recipe is built again.
  recipe=$({ cat harness/build-image.sh; printf '%s\n' "$packages"; } | sha256sum | cut -c1-16)
  old=$(docker image inspect -f '{{.Id}} {{index .Config.Labels "org.mtlsconform.recipe"}}' "$image" 2>/dev/null || true)
  [ "${old#* }" = "$recipe" ] && continue
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
done < <(cat lb/*/image.tsv)
exit "$status"
