#!/usr/bin/env bash
# Makes a machine ready for mtlsconform, doing only what is missing.
#
#   scripts/prereqs.sh run    what the main job needs: a running Docker
#                             engine and mmdebstrap (the run builds the
#                             nginx image itself the first time, ~20 s)
#   scripts/prereqs.sh test   (the default) that, and what only the tests
#                             use: chromium (the HTML report is checked in
#                             a browser), curl (the benchmark's baseline),
#                             openssl, python3-junitparser, luajit (Traffic
#                             Server's script is checked against openssl),
#                             and every reference implementation's image
#
# Every step that can take more than a few seconds says what it is doing,
# and says so again every 15 s while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}
case $what in
run | test) ;;
*)
  echo "usage: scripts/prereqs.sh [run|test]" >&2
  exit 2
  ;;
esac

SAY_PREFIX=prereqs
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    step "updating the package lists (apt-get update, usually 5-20 s)" as_root apt-get update -q
    apt_updated=1
  fi
  step "installing $* (apt)" as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=$PATH:/usr/local/go/bin
  else
    say "Go is not installed: install Go 1.22 or later (https://go.dev/dl) and run this again"
    exit 1
  fi
fi

missing=()
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ "$what" = test ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v luajit >/dev/null 2>&1 || missing+=(luajit)
  # The tests read junit.xml with the parser whose rules match Jenkins' and
  # GitLab's (Debian's python3, whatever python3 comes first on PATH).
  /usr/bin/python3 -c 'import junitparser' >/dev/null 2>&1 || missing+=(python3-junitparser)
fi
# One apt-get for everything missing: one resolver run, one download.
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
fi

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    say "the Docker engine is not running and dockerd is not installed: start Docker and run this again"
    exit 1
  fi
  say "starting dockerd (log: /var/log/mtlsconform-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/mtlsconform-dockerd.log 2>&1 &'
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || {
    say "dockerd did not come up in 60 s; see /var/log/mtlsconform-dockerd.log"
    exit 1
  }
fi

if [ "$what" = test ]; then
  # The reference implementations' images (nginx, HAProxy, Apache httpd,
  # Caddy), built offline from Debian packages where missing.
  bash scripts/build-images.sh
fi
say "ready: $(docker version --format 'Docker engine {{.Server.Version}}')"
