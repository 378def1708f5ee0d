#!/usr/bin/env bash
# Benchmark (issue 16): frame stepping through warm decoders, side by side in one run.
# 5-minute 1280x720 30 fps H.264 (GOP 250). Two series of 60 uncached thumbnails:
#   seq: N..N+59 from mid-GOP (N = 2625, 125 frames after a keyframe);
#   alt: P+1, P-1, P+2, P-2, ... P±5, repeated (P = 4125);
# each against a server with warm decoders (default settings), one with them off
# (FRAMECAST_WARM_DECODERS=0, the single pipeline per thumbnail), and `ffmpeg -ss T -i F
# -frames:v 1 -c:v mjpeg` per frame. Each request has its own quality so that no answer
# comes from the thumbnail cache. Prints median and p95 per frame, in ms, and the warm
# server's RSS.
# Usage: scripts/bench-stepping.sh
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/bench-lib.sh
video=$(five_minute_720p)
id=5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e
FRAMECAST_WARM_DECODERS=0 serve cold "$video" $id
cold_base=$base cold_server=$server
serve warm "$video" $id
warm_base=$base warm_server=$server
trap 'kill $warm_server $cold_server 2>/dev/null || true' EXIT

frames_seq() { for i in $(seq 0 59); do echo $((2625 + i)); done; }
frames_alt() {
  for i in $(seq 0 59); do
    k=$((i / 2 % 5 + 1))
    if [ $((i % 2)) -eq 0 ]; then echo $((4125 + k)); else echo $((4125 - k)); fi
  done
}

# ms per request: curl's total time.
http_series() {
  local i=0
  while read -r n; do
    i=$((i + 1))
    curl -sS -f -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" \
      "$1/api/v1/file/$uuid/thumbnail?frame=$n&quality=$((30 + i))" | awk '{ print $1 * 1000 }'
  done
}
ffmpeg_series() {
  while read -r n; do
    t=$(awk -v n="$n" 'BEGIN { printf "%.6f", n / 30 }')
    seconds ffmpeg -hide_banner -loglevel error -ss "$t" -i "$video" -frames:v 1 \
      -f image2pipe -c:v mjpeg - | awk '{ print $1 * 1000 }'
  done
}
stats() { sort -n | awk '{ a[NR] = $1 } END { p = int(NR * 0.95 + 0.999); printf "%8.1f %8.1f", a[int((NR + 1) / 2)], a[p] }'; }

printf '%-6s %-8s %8s %8s\n' series path median p95
for series in seq alt; do
  "frames_$series" > "$work/frames"
  warm=$(http_series "$warm_base" < "$work/frames" | stats)
  cold=$(http_series "$cold_base" < "$work/frames" | stats)
  ff=$(ffmpeg_series < "$work/frames" | stats)
  printf '%-6s %-8s %s\n' "$series" warm "$warm" "$series" off "$cold" "$series" ffmpeg "$ff"
done
metrics=$(curl -sS "$warm_base/metrics")
echo "warm server: $(grep -E '^framecast_warm_decoder' <<< "$metrics" | tr '\n' ' ')"
echo "warm server RSS: $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$warm_server/status"), off server RSS: $(awk '/VmRSS/ { print $2 / 1024 " MiB" }' "/proc/$cold_server/status")"
echo "targets (issue 16): warm seq median <= 15 ms and >= 5x faster than off; p95 <= 40 ms"
