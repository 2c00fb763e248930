#!/usr/bin/env bash
# Runs a command with local AWS (moto on loopback) up, and stops it afterwards,
# whatever the command's outcome. The command sees AWS_ENDPOINT_URL and dummy
# credentials, so the real aws-sdk clients reach moto.
#
#   infra/with-local-stack.sh cargo test --workspace
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Each run gets its own moto on a free port, so that two runs at once (a
# test run and a bench, say) never stop each other's. An AWS_ENDPOINT_URL
# already set is used as it is and left running.
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  endpoint="$AWS_ENDPOINT_URL"
else
  LOCAL_AWS_RUN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/tiktok-drafts-moto.XXXXXX")"
  export LOCAL_AWS_RUN_DIR
  cleanup() {
    "$ROOT/infra/local-aws.sh" stop
    rm -rf "$LOCAL_AWS_RUN_DIR"
  }
  trap cleanup EXIT INT TERM
  endpoint="$("$ROOT/infra/local-aws.sh" start)"
fi

export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
# The Lambda Runtime API emulator the real function binaries run under.
CARGO_LAMBDA="${CARGO_LAMBDA:-$("$ROOT/infra/cargo-lambda.sh")}"
export CARGO_LAMBDA
# The translator that turns template.yaml into the stack the demo and the
# stack tests make (installed once here, not by each test at once).
"$ROOT/infra/template-stack.sh" install
"$@"
