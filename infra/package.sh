#!/usr/bin/env bash
# make package: every function template.yaml declares, built as Lambda runs
# it (cargo lambda build --release --arm64, for provided.al2023), zipped as
# Lambda takes it (bootstrap at the root), with each binary's and zip's size
# printed; then `sam build` on the template, which must produce the same
# binaries. Offline once the tools are installed: pinned cargo-lambda with
# zig (cross-compiling) and aws-sam-cli, each in a venv outside the clone,
# created when missing, and Rust's aarch64 target.
#
#   infra/package.sh            build, zip, sam build, compare
#   infra/package.sh --no-sam   build and zip only
set -euo pipefail
CARGO_LAMBDA_VERSION="1.9.2"
ZIG_VERSION="0.13.0"
SAM_VERSION="1.170.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TIKTOK_DRAFTS_CACHE:-$HOME/.cache/tiktok-drafts}"
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/tiktok-drafts/target}"
# Apart from target/lambda, where the emulator-only builds would land.
LAMBDA_DIR="$TARGET/lambda-arm64"
PACKAGE_DIR="$TARGET/package"
SAM_BUILD_DIR="$TARGET/sam-build"
log() { printf 'package: %s\n' "$*" >&2; }

with_sam=1
[ "${1:-}" = --no-sam ] && with_sam=0

venv() { # name, packages...
  local dir="$CACHE/$1"
  shift
  if [ ! -f "$dir/.installed" ]; then
    log "installing $* into $dir"
    rm -rf "$dir"
    "$ROOT/infra/python-venv.sh"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    touch "$dir/.installed"
  fi
  echo "$dir"
}

# cargo-lambda with zig (infra/cargo-lambda.sh installs it without zig, for
# the emulator only).
builder="$(venv "venv-cargo-lambda-$CARGO_LAMBDA_VERSION-zig-$ZIG_VERSION" \
  "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIG_VERSION")"
export PATH="$builder/bin:$PATH"
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "adding Rust's aarch64-unknown-linux-gnu target"
  rustup target add aarch64-unknown-linux-gnu >&2
fi

# The functions, from the template: logical id and binary, one per line.
functions="$("$ROOT/infra/template-stack.sh" describe --template "$ROOT/template.yaml" |
  python3 -c '
import json, sys
for logical_id, f in json.load(sys.stdin)["functions"].items():
    if not f.get("binary"):
        sys.exit(f"{logical_id}: no Metadata.BuildProperties.Binary")
    print(logical_id, f["binary"])
')"
bins=()
while read -r _ binary; do bins+=(--bin "$binary"); done <<<"$functions"

cd "$ROOT"
# CMake: libjpeg-turbo is built from source (zig compiles it for arm64).
"$ROOT/infra/build-deps.sh"
started=$(date +%s)
cargo lambda build --release --arm64 --locked --lambda-dir "$LAMBDA_DIR" "${bins[@]}" >&2
log "built in $(($(date +%s) - started)) s"

# Zipped as `sam deploy` uploads them: bootstrap, executable, at the root.
mkdir -p "$PACKAGE_DIR"
FUNCTIONS="$functions" LAMBDA_DIR="$LAMBDA_DIR" PACKAGE_DIR="$PACKAGE_DIR" python3 - <<'PY'
import os, zipfile
lambda_dir, package_dir = os.environ["LAMBDA_DIR"], os.environ["PACKAGE_DIR"]
print(f"{'function':<24} {'binary':<16} {'bootstrap':>12} {'zip':>12}")
for line in os.environ["FUNCTIONS"].splitlines():
    logical_id, binary = line.split()
    bootstrap = os.path.join(lambda_dir, binary, "bootstrap")
    target = os.path.join(package_dir, f"{binary}.zip")
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(bootstrap, "rb") as f, zipfile.ZipFile(target, "w") as z:
        z.writestr(info, f.read(), compresslevel=9)
    mb = lambda n: f"{n / 1e6:.1f} MB"
    print(f"{logical_id:<24} {binary:<16} {mb(os.path.getsize(bootstrap)):>12} {mb(os.path.getsize(target)):>12}")
print(f"zips in {package_dir}")
PY

if [ "$with_sam" -eq 0 ]; then
  exit 0
fi
sam_venv="$(venv "venv-aws-sam-cli-$SAM_VERSION" "aws-sam-cli==$SAM_VERSION")"
started=$(date +%s)
# sam runs cargo lambda (found on PATH above) for each function; offline.
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}" \
  "$sam_venv/bin/sam" build --template-file "$ROOT/template.yaml" --build-dir "$SAM_BUILD_DIR" \
  --beta-features >&2
log "sam build in $(($(date +%s) - started)) s"
# The same binaries: sam's build of each function equals ours byte for byte.
status=0
while read -r logical_id binary; do
  ours="$LAMBDA_DIR/$binary/bootstrap"
  sams="$SAM_BUILD_DIR/$logical_id/bootstrap"
  if [ ! -f "$sams" ]; then
    echo "sam build made no $sams" >&2
    status=1
  elif cmp -s "$ours" "$sams"; then
    echo "sam build: $logical_id/bootstrap is the same binary as $binary's"
  else
    echo "sam build: $logical_id/bootstrap differs from $binary's ($(stat -c %s "$sams") vs $(stat -c %s "$ours") bytes)" >&2
    status=1
  fi
done <<<"$functions"
exit "$status"
