#!/usr/bin/env bash
# The S3-compatible server the tests start for s3:// media: moto's server mode, from PyPI,
# in a virtualenv (default target/moto-venv). Does nothing when it is there already; safe
# to run several times at once (a lock), and an interrupted install is redone.
set -euo pipefail
venv="${1:-$(cd "$(dirname "$0")/.." && pwd)/target/moto-venv}"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ -f "$venv/.installed" ]; then
  exit 0
fi
echo "installing moto[server] into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5' >&2
touch "$venv/.installed"
