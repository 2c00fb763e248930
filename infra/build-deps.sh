#!/usr/bin/env bash
# Makes sure the build can compile libjpeg-turbo, which the `turbojpeg` crate
# builds from its bundled source and links statically (shared/src/media/jpeg.rs):
# CMake always, and NASM on x86-64 for its SIMD code (arm64 needs none).
# Installs what is missing with apt-get (as root, or through sudo), else fails
# naming the packages. Every make target that compiles runs this first.
# Prints only to stderr: callers' stdout may be captured.
set -euo pipefail
log() { printf 'build-deps: %s\n' "$*" >&2; }

packages=()
command -v cmake >/dev/null || packages+=(cmake)
case "$(uname -m)" in
  x86_64 | amd64) command -v nasm >/dev/null || packages+=(nasm) ;;
esac
[ "${#packages[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  log "building libjpeg-turbo needs ${packages[*]}: install them and run again"
  exit 1
fi
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    log "building libjpeg-turbo needs ${packages[*]}: run \`apt-get install ${packages[*]}\` as root, then this again"
    exit 1
  fi
  as_root=(sudo)
fi
log "installing ${packages[*]} with apt-get${as_root[0]:+ (through sudo)}: libjpeg-turbo is built from source"
# stdout to stderr: see above.
if ! ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
  ! ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2; then
  log "could not install ${packages[*]}; run \`apt-get install ${packages[*]}\` as root, then this again"
  exit 1
fi
