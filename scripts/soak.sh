#!/usr/bin/env bash
# Soak test (not run in CI): N minutes (default 10) of mixed traffic against a release
# server: video ranges, thumbnails (new frames and cached repeats), clips, and clients
# that leave mid-clip. Every minute it prints the server's RSS, open file descriptors and
# live pipelines; at the end, the first and last figures. Flat is good: a leak shows as a
# steady climb.
#
#   scripts/soak.sh [MINUTES]        e.g. scripts/soak.sh 3
#   SOAK_WORKERS=4 scripts/soak.sh   parallel clients per traffic kind (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
workers=${SOAK_WORKERS:-2}
source scripts/bench-lib.sh

# 60 s of 640x360 with audio: big enough for real clips, small enough to make quickly.
video=$work/soak-360p.mp4
if [ ! -s "$video" ]; then
  echo "generating the soak video..." >&2
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=640x360:rate=25:duration=60" \
    -f lavfi -i "sine=frequency=440:duration=60" \
    -c:v libx264 -preset veryfast -g 50 -pix_fmt yuv420p -c:a aac -shortest "$work/partial.mp4"
  mv "$work/partial.mp4" "$video"
fi
frames=1500
size=$(stat -c %s "$video")
serve soak "$video" 50a450a450a450a450a450a450a450a4
api="$base/api/v1/file/$uuid"
auth="Authorization: Bearer $token"
deadline=$(( $(date +%s) + minutes * 60 ))
pids=()

# Each traffic kind loops until the deadline; curl's failures (503 when over the limits,
# cut streams) are expected and counted by the server's /metrics, not here.
video_ranges() {
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local start=$(( (RANDOM * 32768 + RANDOM) % size ))
    curl -s -o /dev/null -H "$auth" -r "$start-$(( start + 1048575 ))" "$api/video" || true
  done
}
thumbnails() {
  while [ "$(date +%s)" -lt "$deadline" ]; do
    # Half new frames, half from a small set that the cache answers.
    local frame=$(( RANDOM % 2 ? RANDOM % frames : RANDOM % 20 ))
    curl -s -o /dev/null -H "$auth" "$api/thumbnail?frame=$frame&width=320" || true
  done
}
clips() {
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local first=$(( RANDOM % (frames - 100) ))
    curl -s -o /dev/null -H "$auth" "$api/clip?start_frame=$first&end_frame=$(( first + RANDOM % 100 ))" || true
  done
}
disconnects() {
  while [ "$(date +%s)" -lt "$deadline" ]; do
    # A long clip the client gives up on after a moment.
    curl -s -o /dev/null -m 0.$(( RANDOM % 9 + 1 )) -H "$auth" "$api/clip?start_frame=0&end_frame=1499" || true
    sleep 0.5
  done
}

sample() {
  local rss fds live
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
  fds=$(ls "/proc/$server/fd" | wc -l)
  live=$(curl -s "$base/health" | sed -n 's/.*"active_pipelines":\([0-9]*\).*/\1/p')
  printf '%6s  %8d  %6d  %5s\n' "$1" $(( rss / 1024 )) "$fds" "$live"
}

echo "soak: $minutes min, $workers client(s) per kind, server pid $server"
printf '%6s  %8s  %6s  %5s\n' minute rss_mb fds live
sample 0 | tee "$work/soak-samples.txt"
for kind in video_ranges thumbnails clips disconnects; do
  for _ in $(seq "$workers"); do "$kind" & pids+=($!); done
done
for minute in $(seq "$minutes"); do
  sleep 60
  sample "$minute" | tee -a "$work/soak-samples.txt"
done
wait "${pids[@]}"
sleep 2
sample end | tee -a "$work/soak-samples.txt"

echo "responses by route and status:"
curl -s "$base/metrics" | grep '^framecast_http_requests_total' | sed 's/^framecast_http_requests_total/  /'
curl -s "$base/metrics" | grep -E '^framecast_(pipeline_failures|admission_rejections)_total' | sed 's/^/  /' || true
# First full minute against the last: the first minute includes warm-up (caches, pools).
awk 'NR==2 {r1=$2; f1=$3} $1 != "end" {r=$2; f=$3} END {
  printf "RSS %d MB after minute 1, %d MB at the end (%+d MB); fds %d -> %d\n", r1, r, r - r1, f1, f }' \
  "$work/soak-samples.txt"
