#!/usr/bin/env bash
# Benchmark: a storyboard (WebVTT track + its sprite sheet) against ffmpeg's tile filter,
# side by side in one run. 5-minute 1280x720 30 fps H.264 (GOP 250) + AAC, 160 px wide tiles
# every INTERVAL seconds (default 10: 30 tiles, one 10x10 sheet).
# framecast: GET storyboard.vtt, then every sheet it names, uncached (each run a different
# tile width, 160 + run, so the cache cannot answer); ffmpeg: the same tiles from a full
# decode, `ffmpeg -i F -vf fps=1/INTERVAL,scale=160:-1,tile=10x10 sheet%d.jpg`.
# Prints each run's seconds, the medians and ffmpeg/framecast (target >= 5).
# Usage: scripts/bench-storyboard.sh [RUNS] [INTERVAL]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
interval=${2:-10}

source scripts/bench-lib.sh
video=$(five_minute_720p)
serve storyboard "$video" 5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b

# storyboard WIDTH: the VTT, then each sheet it references.
storyboard() {
  local vtt sheet
  vtt=$(curl -sS -f "$base/api/v1/file/$uuid/storyboard.vtt?width=$1&interval=$interval&access_token=$token")
  for sheet in $(grep -o 'storyboard.jpg?[^#]*' <<< "$vtt" | sort -u); do
    curl -sS -f -o /dev/null "$base/api/v1/file/$uuid/$sheet"
  done
}

out=$work/storyboard-ffmpeg
mkdir -p "$out"
: > "$work/s"; : > "$work/f"
for i in $(seq "$runs"); do
  s=$(seconds storyboard $((160 + i)))
  f=$(seconds ffmpeg -hide_banner -loglevel error -y -i "$video" \
    -vf "fps=1/$interval,scale=$((160 + i)):-1,tile=10x10" "$out/sheet%d.jpg")
  echo "run $i: framecast $s s, ffmpeg $f s"
  echo "$s" >> "$work/s"; echo "$f" >> "$work/f"
done
s=$(median < "$work/s"); f=$(median < "$work/f")
awk -v s="$s" -v f="$f" -v r="$runs" -v i="$interval" 'BEGIN {
  printf "5 min 720p, a tile every %s s, median of %d: framecast %.3f s, ffmpeg %.3f s, ffmpeg/framecast %.1f (target >= 5)\n", i, r, s, f, f / s }'
cached=$(seconds storyboard 161)
echo "cached repeat: $cached s"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
