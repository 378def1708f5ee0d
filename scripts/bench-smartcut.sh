#!/usr/bin/env bash
# Benchmark (issue 15): a 60 s clip starting mid-GOP from a 5-minute 1080p30 H.264 file (GOP
# 60, with AAC), three ways side by side in each run, interleaved: the smart cut (/clip, edges
# re-encoded, whole GOPs copied), the same clip with cut=reencode, and
# `ffmpeg -ss T -i F -t 60 -c:v libx264 -preset veryfast -c:a aac -f mpegts`. Prints medians
# of total time and time to first byte, output sizes, and PSNR against the source: of the
# smart cut's re-encoded head and tail, and of each whole output.
# Then the time to first byte alone, FIRST_RUNS times each way, interleaved.
# Usage: scripts/bench-smartcut.sh [RUNS [FIRST_RUNS]]   (default 3 and 11)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
first_runs=${2:-11}

source scripts/bench-lib.sh

# 5 minutes of 1920x1080 30 fps H.264 (GOP 60, closed, B-frames) + AAC, made once.
video=$(test_video 5min-1080p-gop60 300 1920x1080 60 superfast)
serve smartcut "$video" 5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c

gop=60
start=3017                 # 100.57 s, 17 frames into a GOP
end=$((start + 1799))      # 60 s
k1=$(( (start + gop - 1) / gop * gop ))   # first IDR at or after start
k2=$(( (end + 1) / gop * gop ))           # last IDR at or before end + 1
t=$(awk -v n="$start" 'BEGIN { printf "%.6f", n / 30 }')
url="$base/api/v1/file/$uuid/clip?start_frame=$start&end_frame=$end"

cut_of() {
  curl -sS -f -I -H "Authorization: Bearer $token" "$1" | tr -d '\r' |
    sed -n 's/^x-framecast-cut: //Ip'
}
[ "$(cut_of "$url")" = smart ] || { echo "the clip is not smart-cut" >&2; exit 1; }
[ "$(cut_of "$url&cut=reencode")" = reencode ] || exit 1

for name in smart reencode ffmpeg; do : > "$work/sc_$name"; : > "$work/sc_${name}_ttfb"; done
# get NAME URL: total and first-byte times of one request into $work/sc_NAME*.
get() {
  curl -sS -f -o "$work/sc-$1.ts" -w '%{time_total} %{time_starttransfer}\n' \
    -H "Authorization: Bearer $token" "$2" > "$work/sc_one"
  cut -d' ' -f1 "$work/sc_one" >> "$work/sc_$1"
  cut -d' ' -f2 "$work/sc_one" >> "$work/sc_$1_ttfb"
}
for run in $(seq "$runs"); do
  get smart "$url"
  get reencode "$url&cut=reencode"
  seconds ffmpeg -hide_banner -loglevel error -y -ss "$t" -i "$video" -t 60 \
    -c:v libx264 -preset veryfast -c:a aac -f mpegts "$work/sc-ffmpeg.ts" >> "$work/sc_ffmpeg"
  echo "run $run: smart $(tail -1 "$work/sc_smart") s, reencode $(tail -1 "$work/sc_reencode") s," \
    "ffmpeg $(tail -1 "$work/sc_ffmpeg") s" >&2
done

# First byte alone, more often (it varies more than the totals): each request is cut after
# its first bytes, and the next starts once the server has no pipeline left.
idle() {
  local deadline=$((SECONDS + 60))
  until curl -sS "$base/metrics" | grep -q '^framecast_live_gstreamer_pipelines 0$'; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "a pipeline is still live after 60 s" >&2; exit 1; }
    sleep 0.05
  done
}
first_byte() {
  idle
  # curl fails with a write error once head has its byte: the time is printed before.
  curl -sS -N -o >(head -c 1 > /dev/null) -w '%{time_starttransfer}\n' \
    -H "Authorization: Bearer $token" "$2" 2> /dev/null >> "$work/sc_$1_first" || true
}
: > "$work/sc_smart_first"; : > "$work/sc_reencode_first"
for run in $(seq "$first_runs"); do
  first_byte smart "$url"
  first_byte reencode "$url&cut=reencode"
done

frames() {
  ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
    -of csv=p=0 "$1" | awk 'NR == 1'
}
# psnr_at ENCODED OFFSET_FRAMES SOURCE_FRAME FRAMES: PSNR of FRAMES frames of ENCODED from
# its frame OFFSET_FRAMES against SOURCE's from SOURCE_FRAME, compared as raw frames (the
# psnr filter pairs frames by timestamp, which these outputs do not share with the source).
psnr_at() {
  local k=$(($3 / gop * gop)) ss
  ss=$(awk -v k="$k" 'BEGIN { printf "%.6f", k / 30 }')
  ffmpeg -hide_banner -loglevel error -y -i "$1" -vf "select=between(n\,$2\,$(($2 + $4 - 1)))" \
    -fps_mode passthrough -f rawvideo -pix_fmt yuv420p "$work/sc-a.yuv"
  # From the keyframe before: frame n of that decode is SOURCE frame k + n.
  ffmpeg -hide_banner -loglevel error -y -ss "$ss" -i "$video" \
    -vf "select=between(n\,$(($3 - k))\,$(($3 - k + $4 - 1)))" \
    -fps_mode passthrough -f rawvideo -pix_fmt yuv420p "$work/sc-b.yuv"
  ffmpeg -hide_banner -nostats -f rawvideo -pix_fmt yuv420p -s 1920x1080 -i "$work/sc-a.yuv" \
    -f rawvideo -pix_fmt yuv420p -s 1920x1080 -i "$work/sc-b.yuv" -lavfi psnr -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p'
  rm -f "$work/sc-a.yuv" "$work/sc-b.yuv"
}
mb() { stat -c %s "$1" | awk '{ printf "%.1f", $1 / 1e6 }'; }

s=$(median < "$work/sc_smart"); s_ttfb=$(median < "$work/sc_smart_ttfb")
r=$(median < "$work/sc_reencode"); r_ttfb=$(median < "$work/sc_reencode_ttfb")
f=$(median < "$work/sc_ffmpeg")
echo
echo "60 s clip (frames $start-$end) of a 5-minute 1080p30 H.264 file (GOP 60) + AAC, median of $runs"
echo "smart cut: frames $start-$((k1 - 1)) re-encoded, $k1-$((k2 - 1)) copied, $k2-$end re-encoded"
printf "%-10s %9s %9s %9s %8s\n" way total_s ttfb_s size_MB frames
printf "%-10s %9.3f %9.3f %9s %8s\n" smart "$s" "$s_ttfb" "$(mb "$work/sc-smart.ts")" \
  "$(frames "$work/sc-smart.ts")"
printf "%-10s %9.3f %9.3f %9s %8s\n" reencode "$r" "$r_ttfb" "$(mb "$work/sc-reencode.ts")" \
  "$(frames "$work/sc-reencode.ts")"
printf "%-10s %9.3f %9s %9s %8s\n" ffmpeg "$f" - "$(mb "$work/sc-ffmpeg.ts")" \
  "$(frames "$work/sc-ffmpeg.ts")"
head=$((k1 - start)); tail=$((end + 1 - k2))
echo "PSNR against the source (dB), frame-exact: smart's re-encoded head ($head frames)" \
  "$(psnr_at "$work/sc-smart.ts" 0 "$start" "$head"), tail ($tail frames)" \
  "$(psnr_at "$work/sc-smart.ts" $((k2 - start)) "$k2" "$tail"); its copied frames" \
  "$k1-$((k1 + 9)): $(psnr_at "$work/sc-smart.ts" $((k1 - start)) "$k1" 10);" \
  "cut=reencode's same head $(psnr_at "$work/sc-reencode.ts" 0 "$start" "$head")"
echo "ffmpeg's output: PSNR $(psnr "$work/sc-ffmpeg.ts" "$video" "$t" 1800) dB against the source from -ss $t"
sf=$(median < "$work/sc_smart_first"); rf=$(median < "$work/sc_reencode_first")
echo "first byte alone, median of $first_runs interleaved: smart $sf s, reencode $rf s"
awk -v s="$s" -v r="$r" -v f="$f" -v sf="$sf" -v rf="$rf" 'BEGIN {
  printf "speed-up: %.1fx vs cut=reencode, %.1fx vs ffmpeg (target >= 10); first byte %.3f vs %.3f s, ratio %.2f (target <= 1)\n",
    r / s, f / s, sf, rf, sf / rf
}'
