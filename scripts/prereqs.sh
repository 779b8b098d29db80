#!/usr/bin/env bash
# Makes a fresh machine ready for mtlsconform: a running Docker engine,
# mmdebstrap, and the load balancer images (built offline, once).
# Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'prereqs: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH=$PATH:/usr/local/go/bin
  else
    say "Go is not installed: install Go 1.22 or later (https://go.dev/dl) and run this again"
    exit 1
  fi
fi

command -v docker >/dev/null 2>&1 || apt_install docker.io
command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
# The HTML report is checked in a real headless browser.
command -v chromium >/dev/null 2>&1 || apt_install chromium
# curl is the baseline of the benchmark.
command -v curl >/dev/null 2>&1 || apt_install curl
# openssl cross-checks the generated certificates and makes partners' .p12.
command -v openssl >/dev/null 2>&1 || apt_install openssl
# The tests read junit.xml with the parser whose rules match Jenkins' and
# GitLab's (Debian's python3, whatever python3 comes first on PATH).
/usr/bin/python3 -c 'import junitparser' >/dev/null 2>&1 || apt_install python3-junitparser

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
  docker info >/dev/null 2>&1 || { say "dockerd did not come up in 60 s; see /var/log/mtlsconform-dockerd.log"; exit 1; }
fi

# The reference implementations' images (nginx, HAProxy, Apache httpd,
# Caddy), built offline from Debian packages where missing; the list and
# the packages live in the harness, so this asks the CLI.
export PATH=$PATH:/usr/local/go/bin
go run ./cmd/mtlsconform images >&2
say "ready: $(docker version --format 'Docker engine {{.Server.Version}}')"
