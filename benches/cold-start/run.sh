#!/usr/bin/env bash
# Cold-start bench: every function of template.yaml (the list comes from the
# template) and a bare lambda_runtime echo function, release builds, under
# the Lambda emulator on a stack made from the template (local moto).
# Prints figures; not part of the test suite.
#
#   benches/cold-start/run.sh [--runs N]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tiktok-drafts/target}"
bins=()
while read -r binary; do bins+=(--bin "$binary"); done < <(
  "$root/infra/template-stack.sh" describe --template "$root/template.yaml" |
    python3 -c 'import json, sys; [print(f["binary"]) for f in json.load(sys.stdin)["functions"].values()]'
)
cd "$root"
cargo build --release --locked --workspace "${bins[@]}" --bin cold-start-bench --bin lambda-echo
exec infra/with-local-stack.sh "$CARGO_TARGET_DIR/release/cold-start-bench" "$@"
