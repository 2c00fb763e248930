#!/usr/bin/env bash
# Makes sure `python3 -m venv` works: the scripts that install pinned tools
# into venvs (moto, cargo-lambda, cfn-lint, the slideshow bench's Pillow) need
# it, and on Debian and Ubuntu the venv module's ensurepip comes in a separate
# package, python3-venv, which a fresh machine lacks. Installs it with apt-get
# when missing (as root, or through sudo), else fails naming the package.
# Prints only to stderr: callers' stdout may be captured.
set -euo pipefail
log() { printf 'python-venv: %s\n' "$*" >&2; }

if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
  exit 0
fi
packages=(python3-venv)
command -v python3 >/dev/null || packages=(python3 python3-venv)
if ! command -v apt-get >/dev/null; then
  log "python3 with its venv and ensurepip modules is needed (Debian/Ubuntu package: ${packages[*]}); install it and run again"
  exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    log "python3 -m venv needs ${packages[*]}: run \`apt-get install ${packages[*]}\` as root, then this again"
    exit 1
  fi
  as_root=(sudo)
fi
log "installing ${packages[*]} with apt-get${as_root[0]:+ (through sudo)}: python3 -m venv needs it"
# stdout to stderr: see above.
if ! ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
  ! ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >&2; then
  log "could not install ${packages[*]}; run \`apt-get install ${packages[*]}\` as root, then this again"
  exit 1
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  log "${packages[*]} is installed but python3 still lacks venv/ensurepip (is python3 another Python than Debian's?)"
  exit 1
fi
