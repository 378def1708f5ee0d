#!/usr/bin/env bash
# Benchmark: a 300-frame 1280x720 clip (H.264 + AAC in MPEG-TS) over HTTP vs
# `ffmpeg -ss T -i F -frames:v 300 -c:v libx264 -preset P -c:a aac -f mpegts`, with the x264
# preset read from pipelines/clip-video.gst, side by side in one run. Prints median total
# time, time to first byte, and the ratio. Usage: scripts/bench-clip.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

source scripts/bench-lib.sh
video=$(five_minute_720p)
preset=$(grep -v '^ *#' pipelines/clip-video.gst | grep -o 'speed-preset=[a-z]*' | cut -d= -f2)
preset=${preset:-medium}

serve clip "$video" c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1

start=3000 # frame 3000 = 100 s, a keyframe (GOP 250): both tools decode from there
end=$((start + 299))
t=$(awk -v n="$start" 'BEGIN { printf "%.6f", n / 30 }')
: > "$work/c_total"; : > "$work/c_ttfb"; : > "$work/f_total"
for _ in $(seq "$runs"); do
  curl -sS -f -o "$work/clip.ts" -w '%{time_total} %{time_starttransfer}\n' \
    -H "Authorization: Bearer $token" \
    "$base/api/v1/file/$uuid/clip?start_frame=$start&end_frame=$end" > "$work/c_one"
  cut -d' ' -f1 "$work/c_one" >> "$work/c_total"
  cut -d' ' -f2 "$work/c_one" >> "$work/c_ttfb"
  seconds ffmpeg -hide_banner -loglevel error -y -ss "$t" -i "$video" -frames:v 300 \
    -c:v libx264 -preset "$preset" -c:a aac -f mpegts "$work/ffmpeg.ts" >> "$work/f_total"
done
frames=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$work/clip.ts" | awk 'NR == 1')
c=$(median < "$work/c_total"); ttfb=$(median < "$work/c_ttfb"); f=$(median < "$work/f_total")
awk -v c="$c" -v f="$f" -v ttfb="$ttfb" -v p="$preset" -v n="$frames" -v runs="$runs" 'BEGIN {
  printf "300-frame 720p clip from frame 3000, x264 preset %s, median of %d\n", p, runs
  printf "framecast HTTP total %.3f s (first byte %.3f s, %s frames)\n", c, ttfb, n
  printf "ffmpeg -ss       total %.3f s\n", f
  printf "ratio framecast/ffmpeg: %.2f (target <= 1.0)\n", c / f
}'
