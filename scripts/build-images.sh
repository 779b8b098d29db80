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
  docker image inspect "$image" >/dev/null 2>&1 && continue
  # The harness's lock (harness/images.go: lockImages) taken by flock(1).
  step "building $image from Debian packages (mmdebstrap; about 10 s, once)" \
    flock "$lockdir/images.lock" sh -c 'docker image inspect "$1" >/dev/null 2>&1 || bash harness/build-image.sh "$1" "$2" "$3" "$4"' _ "$image" "$packages" "$name" "$binary" ||
    status=$?
done < <(cat lb/*/image.tsv)
exit "$status"
