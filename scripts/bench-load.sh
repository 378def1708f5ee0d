#!/usr/bin/env bash
# Load benchmark on the 5-minute 1280x720 file, each figure beside ffmpeg run the same way
# in the same run:
#   1. thumbnails per second with 1, 2, 4 and 8 concurrent clients (uncached: random frames
#      and qualities) vs as many concurrent `ffmpeg -ss T -i F -frames:v 1 -c:v mjpeg`;
#   2. 300-frame clips with 1 and 2 concurrent clients vs as many concurrent
#      `ffmpeg -ss T -i F -frames:v 300 -c:v libx264 -preset P -c:a aac -f mpegts`;
#   3. server RSS per active 720p clip stream, with clients reading at 10 KB/s
#      (target <= 60 MB).
# The server runs with its default limits (pools sized from the cores), so the 503s it
# answers under load are counted too.
# Usage: scripts/bench-load.sh [SECONDS_PER_THUMBNAIL_STEP] [CLIPS_PER_CLIENT]
#        BENCH_PARTS="rss" scripts/bench-load.sh    only some parts (thumbnails clips rss)
set -euo pipefail
cd "$(dirname "$0")/.."
step=${1:-15}
clips_each=${2:-3}
parts=" ${BENCH_PARTS:-thumbnails clips rss} "

source scripts/bench-lib.sh
video=$(five_minute_720p)
frames=9000
preset=$(grep -v '^ *#' pipelines/clip-video.gst | grep -o 'speed-preset=[a-z]*' | cut -d= -f2)
preset=${preset:-medium}
serve load "$video" 10ad10ad10ad10ad10ad10ad10ad10ad
api="$base/api/v1/file/$uuid"
echo "cores: $(nproc); x264 preset $preset"

# until SECONDS COMMAND...: runs COMMAND again and again for SECONDS; prints one line per run.
until_elapsed() {
  local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  while [ "$(date +%s%N)" -lt "$end" ]; do "$@"; echo; done
}
http_thumbnail() {
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
    "$api/thumbnail?frame=$(( (RANDOM * 32768 + RANDOM) % frames ))&quality=$(( RANDOM % 40 + 60 ))"
}
ffmpeg_thumbnail() {
  local t
  t=$(awk -v n="$(( (RANDOM * 32768 + RANDOM) % frames ))" 'BEGIN { printf "%.6f", n / 30 }')
  ffmpeg -hide_banner -loglevel error -ss "$t" -i "$video" -frames:v 1 -f image2pipe -c:v mjpeg - > /dev/null && printf 200
}
# concurrently N FILE FUNCTION...: N clients, each appending its lines to FILE.
concurrently() {
  local n=$1 out=$2; shift 2
  : > "$out"
  local pids=()
  for _ in $(seq "$n"); do "$@" >> "$out" & pids+=($!); done
  wait "${pids[@]}"
}

if [[ $parts == *" thumbnails "* ]]; then
echo
echo "thumbnails per second over ${step} s (uncached 720p frames)"
printf '%8s %12s %8s %12s %8s\n' clients framecast/s 503s ffmpeg/s ratio
for n in 1 2 4 8; do
  concurrently "$n" "$work/t_http" until_elapsed "$step" http_thumbnail
  concurrently "$n" "$work/t_ff" until_elapsed "$step" ffmpeg_thumbnail
  ok=$(grep -c '^200$' "$work/t_http" || true); busy=$(grep -c '^503$' "$work/t_http" || true)
  ff=$(grep -c '^200$' "$work/t_ff" || true)
  awk -v n="$n" -v ok="$ok" -v busy="$busy" -v ff="$ff" -v s="$step" \
    'BEGIN { printf "%8d %12.2f %8d %12.2f %8.2f\n", n, ok / s, busy, ff / s, ok / ff }'
done
fi

if [[ $parts == *" clips "* ]]; then
echo
echo "300-frame 720p clips, $clips_each per client (wall time for all)"
printf '%8s %12s %8s %12s %8s\n' clients framecast_s failed ffmpeg_s ratio
http_clips() {
  for _ in $(seq "$clips_each"); do
    local first=$(( RANDOM % (frames - 300) ))
    curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $token" \
      "$api/clip?start_frame=$first&end_frame=$(( first + 299 ))"
  done
}
ffmpeg_clips() {
  for _ in $(seq "$clips_each"); do
    local t
    t=$(awk -v n="$(( RANDOM % (frames - 300) ))" 'BEGIN { printf "%.6f", n / 30 }')
    ffmpeg -hide_banner -loglevel error -ss "$t" -i "$video" -frames:v 300 \
      -c:v libx264 -preset "$preset" -c:a aac -f mpegts - > /dev/null && echo 200
  done
}
for n in 1 2; do
  h=$(seconds concurrently "$n" "$work/c_http" http_clips)
  f=$(seconds concurrently "$n" "$work/c_ff" ffmpeg_clips)
  failed=$(grep -vc '^200$' "$work/c_http" || true)
  awk -v n="$n" -v h="$h" -v f="$f" -v failed="$failed" \
    'BEGIN { printf "%8d %12.2f %8d %12.2f %8.2f\n", n, h, failed, f, h / f }'
done
fi
kill "$server"; wait "$server" 2>/dev/null || true

[[ $parts == *" rss "* ]] || exit 0

echo
streams=4
echo "RSS per active 720p clip stream: $streams streams, clients reading at 10 KB/s"
FRAMECAST_MAX_ENCODING_PIPELINES=$streams serve rss "$video" 10ad10ad10ad10ad10ad10ad10ad10ae
api="$base/api/v1/file/$uuid"
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$server/status"; }
# Warm up (GStreamer's registry, x264's tables, one of each pipeline) before the baseline.
curl -s -o /dev/null -H "Authorization: Bearer $token" "$api/clip?start_frame=0&end_frame=29"
sleep 1
base_rss=$(rss_mb)
slow=()
# slow_clip I: a clip read at 10 KB/s, so that its pipeline stays blocked with every buffer full.
slow_clip() {
  curl -s -o /dev/null --limit-rate 10k -H "Authorization: Bearer $token" \
    "$api/clip?start_frame=$(( $1 * 1000 ))&end_frame=$(( $1 * 1000 + 2999 ))" & slow+=($!)
}
# peak_over SECONDS: the highest RSS sampled each second.
peak_over() {
  local peak=0
  for _ in $(seq "$1"); do
    sleep 1
    peak=$(awk -v a="$peak" -v b="$(rss_mb)" 'BEGIN { print (b > a) ? b : a }')
  done
  echo "$peak"
}
slow_clip 1
one=$(peak_over 10)
for i in $(seq 2 "$streams"); do slow_clip "$i"; done
all=$(peak_over 15)
live=$(curl -s "$base/health" | sed -n 's/.*"active_pipelines":\([0-9]*\).*/\1/p')
kill "${slow[@]}" 2>/dev/null || true
sleep 3
after=$(rss_mb)
awk -v b="$base_rss" -v one="$one" -v all="$all" -v n="$streams" -v live="$live" -v after="$after" 'BEGIN {
  printf "baseline %.1f MB; peak with 1 stream %.1f MB, with %d (%s live at the end) %.1f MB; 3 s after %.1f MB\n", b, one, n, live, all, after
  printf "per stream: %.1f MB over the baseline, %.1f MB for each stream after the first (target <= 60)\n", (all - b) / n, (all - one) / (n - 1) }'
