#!/usr/bin/env bash
# Makes a machine ready for mtlsconform, doing only what is missing.
#
#   scripts/prereqs.sh run    what the main job needs: a running Docker
#                             engine and mmdebstrap (the run builds the
#                             nginx image itself the first time, ~20 s)
#   scripts/prereqs.sh test   (the default) that, and what only the tests
#                             use: chromium (the HTML report is checked in
#                             a browser), curl (the benchmark's baseline),
#                             openssl, python3-junitparser, and the images
#                             of all four reference implementations
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

say() { printf 'prereqs: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# step DESCRIPTION COMMAND...: runs the command with its output kept in a
# log, a line when it starts, one every 15 s while it runs, one when it
# ends; its log is shown when it fails.
step() {
  local desc=$1
  shift
  local log start pid rc=0
  log=$(mktemp "${TMPDIR:-/tmp}/mtlsconform-prereqs.XXXXXX")
  start=$(date +%s)
  say "$desc ..."
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && say "  still $desc ($(($(date +%s) - start)) s)"
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    say "$desc failed (exit $rc):"
    tail -n 30 "$log" >&2
    rm -f "$log"
    return "$rc"
  fi
  rm -f "$log"
  say "  done in $(($(date +%s) - start)) s"
}

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
  # Caddy), built offline from Debian packages where missing; the list and
  # the packages live in the harness, so this asks the CLI.
  mkdir -p bin
  step "building bin/mtlsconform (go build; the first time about a minute)" env CGO_ENABLED=0 go build -o bin/mtlsconform ./cmd/mtlsconform
  bin/mtlsconform images >&2
fi
say "ready: $(docker version --format 'Docker engine {{.Server.Version}}')"
