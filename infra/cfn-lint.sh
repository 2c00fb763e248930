#!/usr/bin/env bash
# Lints template.yaml with a pinned cfn-lint (offline), installing it into a
# venv outside the clone when missing.
set -euo pipefail
VERSION="1.58.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TIKTOK_DRAFTS_CACHE:-$HOME/.cache/tiktok-drafts}/venv-cfn-lint-$VERSION"
if [ ! -x "$VENV/bin/cfn-lint" ] || [ ! -f "$VENV/.installed" ]; then
  echo "cfn-lint: installing cfn-lint==$VERSION into $VENV" >&2
  rm -rf "$VENV"
  "$ROOT/infra/python-venv.sh"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$VERSION"
  touch "$VENV/.installed"
fi
"$VENV/bin/cfn-lint" "${@:-$ROOT/template.yaml}"
