#!/usr/bin/env bash
# Installs what framecast needs to build, run and test on Debian 12, skipping what is there.
set -euo pipefail

packages=(
  pkg-config build-essential ca-certificates curl
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libcairo2-dev libpango1.0-dev libsqlite3-dev
  # Label fonts for detectionoverlay's non-ASCII text: DejaVu (Latin, Greek, Cyrillic,
  # Arabic, Hebrew) and Noto CJK (Chinese, Japanese, Korean); pango picks per character.
  fonts-dejavu-core fonts-noto-cjk
  ffmpeg
  # Matroska files with a rotation (tests/rotation.rs): ffmpeg 5.1 writes none into MKV.
  mkvtoolnix
  # The viewer's browser tests (tests/browser.rs): headless Chromium over WebDriver.
  chromium chromium-driver
  # Packaging checks (make test-packaging, test-deb): promtool, the flatpak manifest's
  # YAML, test keys; dpkg-dev for cargo-deb's dependency scan.
  prometheus python3-yaml openssl dpkg-dev
  # The tests' HTTP origin for remote media, and the virtualenv for their S3 server (moto).
  nginx python3-venv
)

missing=()
for package in "${packages[@]}" "$@"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The Makefile puts ~/.cargo/bin on PATH, so a toolchain installed here is used at once.
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  # Debian 12's rustc is too old for the GStreamer bindings: use rustup's stable.
  echo "installing the Rust toolchain with rustup" >&2
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --profile minimal -c clippy -c rustfmt >&2
fi

# moto's S3 server for the s3:// tests, from PyPI into target/moto-venv.
"$(dirname "$0")/moto-venv.sh"
