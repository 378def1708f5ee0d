#!/usr/bin/env bash
# Benchmark: thumbnail latency vs the ffmpeg CLI, side by side in one run.
# 5-minute 1280x720 30 fps H.264 (GOP 250) + AAC; frames 100, 1000, 5000, 8900.
# Columns: median of RUNS uncached HTTP thumbnails (each run a different quality, so the
# cache cannot answer), `ffmpeg -ss T -i F -frames:v 1 -c:v mjpeg`, and the seed's
# `ffmpeg -i F -vf select=eq(n\,N)` (run once: it decodes everything up to N).
# Usage: scripts/bench-thumbnail.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

source scripts/bench-lib.sh
video=$(five_minute_720p)
serve thumb "$video" 7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b

http() { curl -sS -f -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "$base/api/v1/file/$uuid/thumbnail?$1"; }

printf '%6s %10s %10s %10s %9s %12s %10s\n' frame http_s ff_ss_s select_s http/-ss select/http cached_ms
for n in 100 1000 5000 8900; do
  t=$(awk -v n="$n" 'BEGIN { printf "%.6f", n / 30 }')
  : > "$work/h"; : > "$work/f"
  for i in $(seq "$runs"); do
    http "frame=$n&quality=$((91 - i))" >> "$work/h"; echo >> "$work/h"
    seconds ffmpeg -hide_banner -loglevel error -ss "$t" -i "$video" -frames:v 1 -f image2pipe -c:v mjpeg - >> "$work/f"
  done
  h=$(median < "$work/h"); f=$(median < "$work/f")
  s=$(seconds ffmpeg -hide_banner -loglevel error -i "$video" -vf "select=eq(n\,$n)" -frames:v 1 -f image2pipe -c:v mjpeg -)
  http "frame=$n" > /dev/null
  cached=$(http "frame=$n")
  awk -v n="$n" -v h="$h" -v f="$f" -v s="$s" -v c="$cached" \
    'BEGIN { printf "%6d %10.3f %10.3f %10.3f %9.2f %12.1f %10.2f\n", n, h, f, s, h / f, s / h, c * 1000 }'
done
echo "targets: http/-ss <= 0.35 at each frame (issue 13); select/http >= 30 at 8900; cached < 5 ms; http flat in N"
