#!/usr/bin/env bash
# What the creator page's browser test needs (functions/creator-page/tests/page.rs):
# Debian's Chromium and playwright-core from npm (which drives it; it downloads
# no browser of its own). Installs what is missing; `make test` runs this first.
# Without them the test fails with what to install; it never skips itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/functions/creator-page/tests/browser"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { printf 'browser-test-deps: %s\n' "$*" >&2; }

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    log "Chromium is missing at $CHROMIUM: install it (sudo apt-get install chromium) or set CHROMIUM"
    exit 1
  fi
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "Node.js 20 or newer and npm are needed (nodejs.org, or your distribution's nodejs and npm)"
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  log "Node.js $(node --version) is too old: playwright-core needs 20 or newer"
  exit 1
fi

if [ ! -d "$DIR/node_modules/playwright-core" ]; then
  log "installing playwright-core (npm ci in $DIR)"
  npm ci --prefix "$DIR" --no-audit --no-fund --loglevel=error
fi
