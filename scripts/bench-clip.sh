#!/usr/bin/env bash
# Benchmark: a 300-frame 1280x720 clip (H.264 + AAC in MPEG-TS) over HTTP vs
# `ffmpeg -ss T -i F -frames:v 300 -c:v libx264 -preset P -c:a aac -f mpegts`, with the x264
# preset read from pipelines/clip-video.gst, side by side in one run; and vs the same ffmpeg
# line given the file's other x264 settings (-x264-params), so that both do the same work.
# Prints median total time, time to first byte, the ratios, and each output's size and PSNR
# against the source. Usage: scripts/bench-clip.sh [RUNS]
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
: > "$work/c_total"; : > "$work/c_ttfb"; : > "$work/f_total"; : > "$work/s_total"
params=$(clip_x264_params)
for _ in $(seq "$runs"); do
  curl -sS -f -o "$work/clip.ts" -w '%{time_total} %{time_starttransfer}\n' \
    -H "Authorization: Bearer $token" \
    "$base/api/v1/file/$uuid/clip?start_frame=$start&end_frame=$end" > "$work/c_one"
  cut -d' ' -f1 "$work/c_one" >> "$work/c_total"
  cut -d' ' -f2 "$work/c_one" >> "$work/c_ttfb"
  seconds ffmpeg -hide_banner -loglevel error -y -ss "$t" -i "$video" -frames:v 300 \
    -c:v libx264 -preset "$preset" -c:a aac -f mpegts "$work/ffmpeg.ts" >> "$work/f_total"
  seconds ffmpeg -hide_banner -loglevel error -y -ss "$t" -i "$video" -frames:v 300 \
    -c:v libx264 -preset "$preset" -x264-params "$params" -c:a aac -f mpegts \
    "$work/ffmpeg-same.ts" >> "$work/s_total"
done
frames=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$work/clip.ts" | awk 'NR == 1')
c=$(median < "$work/c_total"); ttfb=$(median < "$work/c_ttfb")
f=$(median < "$work/f_total"); same=$(median < "$work/s_total")
# output NAME FILE: its size and PSNR against the source frames.
output() {
  printf "%-22s %6.2f MB  PSNR %s dB\n" "$1" "$(stat -c %s "$2" | awk '{ print $1 / 1e6 }')" \
    "$(psnr "$2" "$video" "$t" 300)"
}
awk -v c="$c" -v f="$f" -v s="$same" -v ttfb="$ttfb" -v p="$preset" -v n="$frames" \
  -v runs="$runs" -v params="$params" 'BEGIN {
  printf "300-frame 720p clip from frame 3000, x264 preset %s, median of %d\n", p, runs
  printf "framecast HTTP total %.3f s (first byte %.3f s, %s frames)\n", c, ttfb, n
  printf "ffmpeg -ss       total %.3f s; with -x264-params %s %.3f s\n", f, params, s
  printf "ratio framecast/ffmpeg: %.2f (target <= 1.0); same settings: %.2f\n", c / f, c / s
}'
output framecast "$work/clip.ts"
output "ffmpeg preset" "$work/ffmpeg.ts"
output "ffmpeg same settings" "$work/ffmpeg-same.ts"
