#!/usr/bin/env bash
# What the flatpak's framecast module does, without flatpak-builder: the sources alone
# (no target/, no ~/.cargo registry cache), crates from a vendor directory, and
# `cargo build --release --workspace --frozen` with no network. Then checks that the
# crates cargo vendored have cargo-sources.json's checksums, so flatpak-builder unpacks
# the same code. Prints how long the build took.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
# The committed tree plus uncommitted changes to tracked files: what the manifest's
# `type: dir` source would see, minus target/ and data/.
git ls-files -z --cached | grep -zv '^flatpak/cargo-sources.json$' |
  xargs -0 tar -cf - | tar -xf - -C "$work/src"

echo "flatpak-offline-build: vendoring the crates of Cargo.lock" >&2
cargo vendor --locked --manifest-path "$work/src/Cargo.toml" "$work/vendor" >"$work/vendor.toml"
python3 scripts/check-flatpak.py --vendor "$work/vendor"

mkdir -p "$work/src/.cargo" "$work/cargo-home"
cp "$work/vendor.toml" "$work/src/.cargo/config.toml"
echo "flatpak-offline-build: building offline" >&2
started=$SECONDS
(
  cd "$work/src"
  # An empty CARGO_HOME: nothing from this machine's registry cache can be used.
  CARGO_HOME="$work/cargo-home" CARGO_NET_OFFLINE=true \
    cargo build --release --workspace --frozen
)
ls -l "$work/src/target/release/framecast" "$work/src/target/release/libgstframecast.so"
echo "flatpak-offline-build: ok, built in $((SECONDS - started)) s" >&2
