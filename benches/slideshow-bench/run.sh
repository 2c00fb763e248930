#!/usr/bin/env bash
# Slideshow conversion benchmark: our convert_all against Pillow and
# vipsthumbnail on 35 generated 12 MP PNGs, JPEGs and HEICs. Prints figures
# and PASS/FAIL per target; exits non-zero on a FAIL. Not part of the test
# suite.
#
# Setup (idempotent): Pillow and pillow-heif in a venv under
# ~/.cache/tiktok-drafts/, and Debian's libvips-tools when vipsthumbnail is
# missing (needs root).
#
#   benches/slideshow-bench/run.sh            # set up, build (release), run
#   SETUP_ONLY=1 benches/slideshow-bench/run.sh
#   PROFILE=bench benches/slideshow-bench/run.sh   # any cargo profile name
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${HOME}/.cache/tiktok-drafts"
venv="${cache}/venv-pillow"

if [ ! -x "${venv}/bin/python3" ] || ! "${venv}/bin/python3" -c 'import PIL, pillow_heif' 2>/dev/null; then
    echo "setting up Pillow in ${venv}" >&2
    mkdir -p "${cache}"
    "${root}/infra/python-venv.sh"
    python3 -m venv "${venv}"
    "${venv}/bin/python3" -m pip install --quiet --upgrade pip
    "${venv}/bin/python3" -m pip install --quiet Pillow pillow-heif
fi

if ! command -v vipsthumbnail >/dev/null 2>&1; then
    echo "installing libvips-tools (vipsthumbnail)" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "vipsthumbnail is missing and this is not root: apt-get install libvips-tools" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libvips-tools >/dev/null
fi

if [ "${SETUP_ONLY:-0}" = "1" ]; then
    echo "setup done: $("${venv}/bin/python3" -c 'import PIL; print("Pillow", PIL.__version__)'), $(vipsthumbnail --vips-version 2>/dev/null || echo vips)" >&2
    exit 0
fi

profile="${PROFILE:-release}"
cd "${root}"
cargo build --profile "${profile}" -p slideshow-bench
target_dir="${CARGO_TARGET_DIR:-${root}/target}"
out_dir="${profile}"
[ "${profile}" = "dev" ] && out_dir="debug"
exec "${target_dir}/${out_dir}/slideshow-bench" --python "${venv}/bin/python3" "$@"
