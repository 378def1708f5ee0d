#!/usr/bin/env bash
# Benchmark: the detection overlay. 300 frames of 1280x720 30 fps, 10 labelled boxes per
# frame (3,000 detections), side by side in one run:
#   (a) plain decode -> encode: /clip of the 300 frames, audio=off (x264 settings of
#       pipelines/clip-video.gst);
#   (b) /video/bbox?audio=off of the same 300 frames;
#   (c) ffmpeg with one drawbox and one drawtext per detection, each enabled on its own frame
#       (enable='eq(n,N)', the filter script in a file), same x264 preset, -f mpegts.
# Then flatness: the 300 last frames of a 40 s video (frames 900-1199, 10 boxes per frame)
# through /video/bbox with 3,000 and with 300,000 detections in the file (the other 297,000
# on frames 0-899, 330 per frame): time to first byte and frames/s should not change.
# Prints medians, the ratios and ffmpeg's peak RSS. Usage: scripts/bench-overlay.sh [RUNS]
# (c) takes minutes per run; BENCH_OVERLAY_FFMPEG=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
with_ffmpeg=${BENCH_OVERLAY_FFMPEG:-1}

# drawtext in (c) needs a font file: fonts-dejavu-core is installed with the usual deps.
BENCH_PACKAGES=fonts-dejavu-core source scripts/bench-lib.sh
preset=$(grep -v '^ *#' pipelines/clip-video.gst | grep -o 'speed-preset=[a-z]*' | cut -d= -f2)
preset=${preset:-medium}
font=$(fc-match -f '%{file}' monospace 2>/dev/null || true)
[ -s "$font" ] || font=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
[ -s "$font" ] || { echo "no font file for drawtext (fc-match monospace)" >&2; exit 1; }

# detections FIRST LAST PER_FRAME [FILTER]: JSON lines, PER_FRAME boxes on each frame
# FIRST..LAST, moving with the frame number; boxes 0 and 1 belong to traces 1 ("alice") and
# 2 ("bob"), the others are "face <confidence>". With FILTER, also writes the ffmpeg filter
# script drawing the same boxes and captions, one drawbox + drawtext per detection.
detections() {
  awk -v first="$1" -v last="$2" -v per="$3" -v filter="${4:-}" -v font="$font" -v q="'" '
    BEGIN {
      for (n = first; n <= last; n++) for (i = 0; i < per; i++) {
        x = 20 + (i * 120 + 2 * n) % 1160; y = 100 + (int(i / 10) * 41 + (i % 2) * 250 + n % 60) % 500
        w = 90; h = 110; c = sprintf("%.2f", 0.5 + ((n + i) % 50) / 100)
        if (i < 2) {
          id = i + 1; who = i ? "bob" : "alice"; text = "#" id " " who
          printf "{\"frame\": %d, \"x\": %d, \"y\": %d, \"w\": %d, \"h\": %d, \"label\": \"face\", \"confidence\": %s, \"trace_id\": %d, \"identity\": \"%s\"}\n", n, x, y, w, h, c, id, who
        } else {
          text = "face " c
          printf "{\"frame\": %d, \"x\": %d, \"y\": %d, \"w\": %d, \"h\": %d, \"label\": \"face\", \"confidence\": %s}\n", n, x, y, w, h, c
        }
        if (filter != "") {
          printf "%sdrawbox=x=%d:y=%d:w=%d:h=%d:color=red:t=2:enable=%seq(n,%d)%s,", sep, x, y, w, h, q, n, q > filter
          printf "drawtext=fontfile=%s:text=%s%s%s:x=%d:y=%d:fontsize=16:fontcolor=white:box=1:boxcolor=black:enable=%seq(n,%d)%s", font, q, text, q, x, y - 20, q, n, q > filter
          sep = ",\n"
        }
      }
      if (filter != "") print "" > filter
    }'
}

short=$(test_video overlay-10s-720p 10)   # 300 frames
long=$(test_video overlay-40s-720p 40)    # 1,200 frames
detections 0 299 10 "$work/overlay-filter.txt" > "$work/det-short.jsonl"
detections 900 1199 10 > "$work/det-long-3k.jsonl"
{ detections 0 899 330; cat "$work/det-long-3k.jsonl"; } > "$work/det-long-300k.jsonl"

export FRAMECAST_DATA_DIR=$work/data-overlay
long3k=$("$framecast" import "$long" --uuid 0f3c0f3c0f3c0f3c0f3c0f3c0f3c0f3c --detections "$work/det-long-3k.jsonl")
long300k=$("$framecast" import "$long" --uuid 0f30f30f30f30f30f30f30f30f30f300 --detections "$work/det-long-300k.jsonl")
serve overlay "$short" 0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b "$work/det-short.jsonl"
token=$("$framecast" token --all-files)

# fetch OUT URL: appends "total first_byte" seconds to $work/OUT.times, the body to OUT.ts.
fetch() {
  curl -sS -f -o "$work/$1.ts" -w '%{time_total} %{time_starttransfer}\n' \
    -H "Authorization: Bearer $token" "$base$2" >> "$work/$1.times"
}
frames() {
  ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
    -of csv=p=0 "$1" | awk 'NR == 1'
}
col() { cut -d' ' -f"$2" "$work/$1.times" | median; }
# per_run A B: the median over runs of A's total / B's total in the same run (robust to load
# that changes between runs, unlike the ratio of the medians).
per_run() { paste -d' ' "$work/$1.times" "$work/$2.times" | awk '{ print $1 / $3 }' | median; }
runs_of() { cut -d' ' -f1 "$work/$1.times" | paste -sd' '; }

rm -f "$work"/{plain,bbox,ffmpeg,flat3k,flat300k}.times
for run in $(seq "$runs"); do
  # (a) and (b) alternate which goes first, so a change of load between them evens out.
  if [ $((run % 2)) = 1 ]; then
    fetch plain "/api/v1/file/$uuid/clip?start_frame=0&end_frame=299&audio=off"
    fetch bbox "/api/v1/file/$uuid/video/bbox?audio=off"
  else
    fetch bbox "/api/v1/file/$uuid/video/bbox?audio=off"
    fetch plain "/api/v1/file/$uuid/clip?start_frame=0&end_frame=299&audio=off"
  fi
  if [ "$with_ffmpeg" = 1 ]; then
    /usr/bin/time -f '%e %M' -a -o "$work/ffmpeg.times" \
      ffmpeg -hide_banner -loglevel error -y -i "$short" -frames:v 300 \
      -filter_script:v "$work/overlay-filter.txt" -an -c:v libx264 -preset "$preset" \
      -f mpegts "$work/ffmpeg.ts"
  else
    echo "0 0" >> "$work/ffmpeg.times"
  fi
done
n_a=$(frames "$work/plain.ts"); n_b=$(frames "$work/bbox.ts")
n_c=$([ "$with_ffmpeg" = 1 ] && frames "$work/ffmpeg.ts" || echo 0)
for _ in $(seq "$runs"); do
  fetch flat3k "/api/v1/file/$long3k/video/bbox?start=900&audio=off"
  fetch flat300k "/api/v1/file/$long300k/video/bbox?start=900&audio=off"
done
n_f3=$(frames "$work/flat3k.ts"); n_f300=$(frames "$work/flat300k.ts")
rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$server/status")

awk -v runs="$runs" -v p="$preset" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" \
  -v a="$(col plain 1)" -v a1="$(col plain 2)" -v na="$n_a" \
  -v b="$(col bbox 1)" -v b1="$(col bbox 2)" -v nb="$n_b" \
  -v c="$(col ffmpeg 1)" -v crss="$(col ffmpeg 2)" -v nc="$n_c" -v srss="$rss" \
  -v f3="$(col flat3k 1)" -v f31="$(col flat3k 2)" -v nf3="$n_f3" \
  -v f300="$(col flat300k 1)" -v f3001="$(col flat300k 2)" -v nf300="$n_f300" \
  -v ba="$(per_run bbox plain)" -v ff="$(per_run flat3k flat300k)" \
  -v bc="$([ "$with_ffmpeg" = 1 ] && per_run bbox ffmpeg || echo 0)" \
  -v ra="$(runs_of plain)" -v rb="$(runs_of bbox)" -v rc="$(runs_of ffmpeg)" 'BEGIN {
  printf "300 frames 720p30, 10 labelled boxes per frame, x264 preset %s, median of %d (load %s)\n", p, runs, load
  printf "(a) /clip audio=off         total %7.3f s (first byte %.3f s, %s frames)\n", a, a1, na
  printf "(b) /video/bbox audio=off   total %7.3f s (first byte %.3f s, %s frames)\n", b, b1, nb
  if (c > 0) printf "(c) ffmpeg drawbox+drawtext total %7.3f s (peak RSS %.0f MB, %s frames)\n", c, crss / 1024, nc
  printf "per run, s: (a) %s | (b) %s | (c) %s\n", ra, rb, rc
  printf "ratio (b)/(a): %.2f of the medians, %.2f per run (target <= 1.10)\n", b / a, ba
  if (c > 0) printf "ratio (b)/(c): %.3f of the medians, %.3f per run (target < 1)\n", b / c, bc
  printf "server peak RSS %.0f MB\n", srss / 1024
  printf "flatness, /video/bbox?start=900 of a 1,200-frame 720p file, 10 boxes per frame drawn:\n"
  printf "  3,000 detections in file:   first byte %.3f s, %5.1f frames/s (%s frames)\n", f31, nf3 / f3, nf3
  printf "  300,000 detections in file: first byte %.3f s, %5.1f frames/s (%s frames)\n", f3001, nf300 / f300, nf300
  printf "  ratio 300,000/3,000: first byte %.2f, frames/s %.2f (%.2f per run)\n", f3001 / f31, (nf300 / f300) / (nf3 / f3), ff
}'
