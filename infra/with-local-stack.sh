#!/usr/bin/env bash
# Runs a command with local AWS (moto on loopback) up, and stops it afterwards,
# whatever the command's outcome. The command sees AWS_ENDPOINT_URL and dummy
# credentials, so the real aws-sdk clients reach moto.
#
#   infra/with-local-stack.sh cargo test --workspace
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

started_here=0
if ! endpoint="$("$ROOT/infra/local-aws.sh" endpoint)"; then
  endpoint="$("$ROOT/infra/local-aws.sh" start)"
  started_here=1
fi
cleanup() { if [ "$started_here" = 1 ]; then "$ROOT/infra/local-aws.sh" stop; fi; }
trap cleanup EXIT INT TERM

export AWS_ENDPOINT_URL="$endpoint"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-testing}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-testing}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_EC2_METADATA_DISABLED=true
# The Lambda Runtime API emulator the real function binaries run under.
CARGO_LAMBDA="${CARGO_LAMBDA:-$("$ROOT/infra/cargo-lambda.sh")}"
export CARGO_LAMBDA
"$@"
