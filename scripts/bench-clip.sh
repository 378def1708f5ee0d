#!/usr/bin/env bash
# Benchmark: a 300-frame 1280x720 clip (H.264 + AAC in MPEG-TS) over HTTP vs
# `ffmpeg -ss T -i F -frames:v 300 -c:v libx264 -preset P -c:a aac -f mpegts`, with the x264
# preset read from pipelines/clip-video.gst, side by side in one run. Prints median total
# time, time to first byte, and the ratio. Usage: scripts/bench-clip.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

scripts/install-deps.sh
cargo build --release --workspace --quiet
framecast=$PWD/target/release/framecast
work=${BENCH_DIR:-target/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
video=$work/5min-720p.mp4
if [ ! -s "$video" ]; then
  echo "generating the 5-minute 720p test video..." >&2
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=300" \
    -f lavfi -i "sine=frequency=440:duration=300" \
    -c:v libx264 -preset veryfast -g 250 -keyint_min 250 -sc_threshold 0 -pix_fmt yuv420p \
    -c:a aac -shortest "$work/partial.mp4"
  mv "$work/partial.mp4" "$video"
fi
preset=$(grep -v '^ *#' pipelines/clip-video.gst | grep -o 'speed-preset=[a-z]*' | cut -d= -f2)
preset=${preset:-medium}

export FRAMECAST_DATA_DIR=$work/data-clip FRAMECAST_JWT_SECRET=bench FRAMECAST_LOG=warn
uuid=$("$framecast" import "$video" --uuid c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1)
token=$("$framecast" token --file "$uuid")
FRAMECAST_LISTEN=127.0.0.1:0 "$framecast" serve > "$work/serve-clip.out" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until grep -q listening "$work/serve-clip.out"; do sleep 0.1; done
base=$(sed -n 's/^framecast listening on //p' "$work/serve-clip.out")

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
start=3000 # frame 3000 = 100 s, mid-GOP (keyframes every 250)
end=$((start + 299))
t=$(awk -v n="$start" 'BEGIN { printf "%.6f", n / 30 }')
: > "$work/c_total"; : > "$work/c_ttfb"; : > "$work/f_total"
for _ in $(seq "$runs"); do
  curl -sS -f -o "$work/clip.ts" -w '%{time_total} %{time_starttransfer}\n' \
    -H "Authorization: Bearer $token" \
    "$base/api/v1/file/$uuid/clip?start_frame=$start&end_frame=$end" > "$work/c_one"
  cut -d' ' -f1 "$work/c_one" >> "$work/c_total"
  cut -d' ' -f2 "$work/c_one" >> "$work/c_ttfb"
  t0=$(date +%s.%N)
  ffmpeg -hide_banner -loglevel error -y -ss "$t" -i "$video" -frames:v 300 \
    -c:v libx264 -preset "$preset" -c:a aac -f mpegts "$work/ffmpeg.ts"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >> "$work/f_total"
done
frames=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames -of csv=p=0 "$work/clip.ts" | head -1)
c=$(median < "$work/c_total"); ttfb=$(median < "$work/c_ttfb"); f=$(median < "$work/f_total")
awk -v c="$c" -v f="$f" -v ttfb="$ttfb" -v p="$preset" -v n="$frames" -v runs="$runs" 'BEGIN {
  printf "300-frame 720p clip from frame 3000, x264 preset %s, median of %d\n", p, runs
  printf "framecast HTTP total %.3f s (first byte %.3f s, %s frames)\n", c, ttfb, n
  printf "ffmpeg -ss       total %.3f s\n", f
  printf "ratio framecast/ffmpeg: %.2f (target <= 1.0)\n", c / f
}'
