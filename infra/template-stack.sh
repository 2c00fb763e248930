#!/usr/bin/env bash
# template.yaml as a stack on moto's CloudFormation: runs
# infra/template_stack.py (describe | create | delete | resolve) with a pinned
# aws-sam-translator, the library `sam` itself translates templates with,
# installed into a venv outside the clone when missing (boto3 comes with it).
#
#   infra/template-stack.sh install    only make sure the venv is there
#   infra/template-stack.sh <command> ...
set -euo pipefail
VERSION="1.115.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TIKTOK_DRAFTS_CACHE:-$HOME/.cache/tiktok-drafts}"
VENV="$CACHE/venv-sam-translator-$VERSION"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.installed" ]; then
  mkdir -p "$CACHE"
  # Tests start several stacks at once: one installs, the others wait.
  exec 8>"$VENV.lock"
  flock 8
  if [ ! -f "$VENV/.installed" ]; then
    echo "template-stack: installing aws-sam-translator==$VERSION into $VENV" >&2
    rm -rf "$VENV"
    "$ROOT/infra/python-venv.sh"
    python3 -m venv "$VENV"
    # PyYAML: the translator's YAML reader (CloudFormation's short tags)
    # needs it without declaring it.
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "aws-sam-translator==$VERSION" "PyYAML==6.0.2" >&2
    touch "$VENV/.installed"
  fi
  exec 8>&-
fi
if [ "${1:-}" = install ]; then
  exit 0
fi
exec "$VENV/bin/python" "$ROOT/infra/template_stack.py" "$@"
