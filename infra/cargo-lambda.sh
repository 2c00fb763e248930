#!/usr/bin/env bash
# Prints the path of a pinned cargo-lambda (the Lambda Runtime API emulator
# the tests and the demo run the real function binaries under), installing
# it from its pip package into a venv outside the clone when missing.
# --no-deps: the package ships the binary; its ziglang dependency (about
# 400 MB) is only needed for cross-compiling, which `sam build` does.
set -euo pipefail
VERSION="1.9.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TIKTOK_DRAFTS_CACHE:-$HOME/.cache/tiktok-drafts}/venv-cargo-lambda-$VERSION"
if [ ! -x "$VENV/bin/cargo-lambda" ] || [ ! -f "$VENV/.installed" ]; then
  echo "cargo-lambda: installing cargo-lambda==$VERSION into $VENV" >&2
  rm -rf "$VENV"
  "$ROOT/infra/python-venv.sh"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "cargo-lambda==$VERSION"
  touch "$VENV/.installed"
fi
echo "$VENV/bin/cargo-lambda"
