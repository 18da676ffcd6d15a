# vaani: two commands for a newcomer.
#   make run    install what is missing, build, start the server on config/vaani.toml
#   make test   install what is missing, build, run every check and test
# Builds go to a target directory outside the clone so that CI and later runs reuse them.

export CARGO_TARGET_DIR ?= $(HOME)/.cache/vaani-target
export CARGO_TERM_COLOR ?= never
CONFIG ?= config/vaani.toml

.PHONY: setup plugins build run test lint unit

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

test: lint unit
