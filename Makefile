# The two commands a newcomer needs are `make demo` and `make test`; the rest
# are for day-to-day work. Each target installs and starts what it needs.

# Compiled dependencies are kept outside the clone so fresh clones reuse them.
CARGO_TARGET_DIR ?= $(HOME)/.cache/tiktok-drafts/target
export CARGO_TARGET_DIR

.PHONY: test demo demo-real demo-bins lint fmt package bench bench-forward bench-checker bench-slideshow bench-cold-start sim

## test: every test, against local AWS (moto, started and stopped here) and the TikTok
## simulator; the creator page's test drives Debian's Chromium (installed here when missing)
test:
	infra/build-deps.sh
	infra/browser-test-deps.sh
	infra/with-local-stack.sh cargo test --workspace --locked

## demo: the main job end to end on the local stack (moto + TikTok simulator), the
## functions' real binaries under cargo-lambda's Lambda Runtime API emulator;
## options as for demo-real, e.g. make demo DEMO_ARGS="--video clip.mp4"
demo: demo-bins
	infra/with-local-stack.sh $(CARGO_TARGET_DIR)/debug/local-demo $(DEMO_ARGS)

## demo-real: the same against your AWS account and TikTok app (README: "The demo on
## real AWS and TikTok"); e.g. make demo-real DEMO_ARGS="--video clip.mp4"
demo-real: demo-bins
	CARGO_LAMBDA="$$(infra/cargo-lambda.sh)" $(CARGO_TARGET_DIR)/debug/local-demo --aws real --tiktok real $(DEMO_ARGS)

demo-bins:
	infra/build-deps.sh
	cargo build --locked -q -p oauth-callback -p s3-upload -p status-checker -p tiktok-webhook -p events -p creator-page -p tiktok-drafts-cli -p local-demo

## lint: formatting and clippy, as CI runs them
lint:
	cargo fmt --all -- --check
	infra/build-deps.sh
	cargo clippy --workspace --all-targets --locked -- -D warnings
	infra/cfn-lint.sh template.yaml

fmt:
	cargo fmt --all

## package: the functions as Lambda runs them (cargo lambda build --release --arm64), zipped,
## each binary's and zip's size printed; then `sam build` on template.yaml, which must make the
## same binaries (infra/package.sh --no-sam skips it). Slow: not part of CI
package:
	infra/package.sh

## bench: streamed-upload benchmark (prints peak RSS and throughput)
bench:
	infra/build-deps.sh
	cargo build --release --locked -p tiktok-sim -p tiktok-drafts-tests --bins
	$(CARGO_TARGET_DIR)/release/upload-bench

## bench-forward: S3 (moto) -> simulator forward of 1000 MB, against a plain S3 read and a plain upload
bench-forward:
	infra/build-deps.sh
	cargo build --release --locked -p tiktok-sim -p tiktok-drafts-tests --bins
	infra/with-local-stack.sh $(CARGO_TARGET_DIR)/release/upload-bench --source s3 --size-mb 1000

## bench-slideshow: 35 photo-like 12 MP PNGs, camera JPEGs and HEICs to TikTok JPEGs, against Pillow and vipsthumbnail in the same run
bench-slideshow:
	infra/build-deps.sh
	benches/slideshow-bench/run.sh

## bench-checker: status checker over 5,000 and 10,000 unfinished jobs on 1,000 accounts, then 10,000 with 50,000 finished jobs added
bench-checker:
	infra/build-deps.sh
	cargo build --release --locked -p checker-bench
	infra/with-local-stack.sh $(CARGO_TARGET_DIR)/release/checker-bench

## bench-cold-start: each function's release binary under the Lambda emulator, on a stack made
## from template.yaml, beside a bare lambda_runtime echo function: first-invocation, warm and init times
bench-cold-start:
	infra/build-deps.sh
	benches/cold-start/run.sh

## sim: run the TikTok simulator in the foreground on 127.0.0.1:9300
sim:
	infra/build-deps.sh
	cargo run --locked -p tiktok-sim -- --bind 127.0.0.1:9300 --state-dir .local/tiktok-sim
