#!/usr/bin/env bash
# Benchmark: labels the 5x7 font cannot draw (rendered by Pango/cairo into cached masks)
# against ASCII labels (the bitmap font). 300 frames of 1280x720 30 fps, 10 labelled boxes
# per frame, each box in a trace with an identity: ASCII names in one file ("alice", ...),
# names in other scripts in the other ("José Ramírez", "王伟", "Дмитрий", ...). Runs
# /video/bbox?audio=off of each, alternating which goes first, and prints the medians and
# the ratio non-ASCII / ASCII (median of the per-run ratios; target <= 1.05).
# Usage: scripts/bench-labels.sh [RUNS] (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
source scripts/bench-lib.sh

video=$(test_video overlay-10s-720p 10)
# detections FILE NAME...: 10 boxes on each of frames 0-299, box i in trace i+1 named NAME[i].
detections() {
  local out=$1; shift
  printf '%s\n' "$@" | awk '
    { names[NR - 1] = $0 }
    END {
      for (n = 0; n <= 299; n++) for (i = 0; i < 10; i++) {
        x = 20 + (i * 120 + 2 * n) % 1160; y = 100 + ((i % 2) * 250 + n % 60) % 500
        printf "{\"frame\": %d, \"x\": %d, \"y\": %d, \"w\": 90, \"h\": 110, \"trace_id\": %d, \"identity\": \"%s\"}\n", n, x, y, i + 1, names[i]
      }
    }' > "$out"
}
detections "$work/labels-ascii.jsonl" alice bob carol dave erin frank grace heidi ivan judy
detections "$work/labels-other.jsonl" "José Ramírez" "王伟" "Øyvind" "Дмитрий" "أحمد" \
  "Ngô Bảo Châu" "山田太郎" "Ζωή" "Zoë Saldaña" "김민준"

export FRAMECAST_DATA_DIR=$work/data-labels
ascii=$("$framecast" import "$video" --uuid 1abe1abe1abe1abe1abe1abe1abe1abe --detections "$work/labels-ascii.jsonl")
serve labels "$video" 2abe2abe2abe2abe2abe2abe2abe2abe "$work/labels-other.jsonl"
other=$uuid
token=$("$framecast" token --all-files)

rm -f "$work"/labels-*.times
fetch() {
  curl -sS -f -o "$work/labels-$1.ts" -w '%{time_total}\n' -H "Authorization: Bearer $token" \
    "$base/api/v1/file/$2/video/bbox?audio=off" >> "$work/labels-$1.times"
}
for run in $(seq "$runs"); do
  if ((run % 2)); then fetch ascii "$ascii"; fetch other "$other"
  else fetch other "$other"; fetch ascii "$ascii"; fi
done
echo "300 frames 720p30, 10 labelled boxes per frame, median of $runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'ASCII labels (5x7 font)       %.3f s\n' "$(median < "$work/labels-ascii.times")"
printf 'other scripts (cairo masks)   %.3f s\n' "$(median < "$work/labels-other.times")"
echo "per run, s: ascii $(paste -sd' ' "$work/labels-ascii.times") | other $(paste -sd' ' "$work/labels-other.times")"
paste -d' ' "$work/labels-other.times" "$work/labels-ascii.times" | awk '{ print $1 / $2 }' | median |
  xargs printf 'ratio other/ASCII: %.3f (median of per-run ratios; target <= 1.05)\n'
