# vaani: two commands for a newcomer.
#   make run    install what is missing, build, start the server on config/vaani.toml
#   make test   install what is missing, build, run every check and test
# Builds go to a target directory outside the clone so that CI and later runs reuse them.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/vaani-target
export CARGO_TERM_COLOR ?= never
CONFIG ?= config/vaani.toml

.PHONY: setup plugins build run test lint unit fuzz

setup:
	@scripts/setup.sh

plugins: setup
	@plugins/build.sh

build: plugins
	cargo build --workspace --bins

run: build
	mkdir -p data
	$(CARGO_TARGET_DIR)/debug/vaani serve --config $(CONFIG)

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The end-to-end tests run target/debug/vaani: build it first (cargo test alone does not).
unit: plugins
	cargo build --workspace --bins
	cargo test --workspace
	cd plugins && CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/plugins cargo test

# cargo-fuzz targets for the SIP message and SDP parsers, FUZZ_SECONDS each (stable Rust:
# no sanitizer, so it finds panics, hangs and failed assertions). A crash stops the run; its
# input is in fuzz/artifacts/<target>/ and becomes a regression test.
FUZZ_SECONDS ?= 45
fuzz: setup
	cd fuzz && for target in sip_message sdp_offer; do \
	  corpus="$$(mktemp -d)"; \
	  CARGO_TARGET_DIR=$(CARGO_TARGET_DIR)/fuzz cargo fuzz run --sanitizer none $$target "$$corpus" seeds/$$target -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 || exit 1; \
	  rm -rf "$$corpus"; \
	done

test: lint unit fuzz
