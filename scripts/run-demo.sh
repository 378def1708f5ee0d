#!/usr/bin/env bash
# First run: generate a demo video with detections and import it. Every run: print a
# ready-to-paste curl line with a fresh token, then serve in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."

framecast=target/release/framecast
data_dir=${FRAMECAST_DATA_DIR:-data}
listen=${FRAMECAST_LISTEN:-127.0.0.1:8080}
demo_uuid=de70de70de70de70de70de70de70de70
demo_dir="$data_dir/demo"

if ! "$framecast" files | grep -q "^$demo_uuid"; then
  mkdir -p "$demo_dir"
  echo "generating the demo video (30 s, 1280x720, 30 fps, H.264 + AAC)..." >&2
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=30" \
    -f lavfi -i "sine=frequency=330:duration=30" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 60 -c:a aac -shortest \
    "$demo_dir/demo.mp4"
  # Two people walking across the frame (traces 1 and 2), and a static object.
  awk 'BEGIN {
    for (f = 0; f < 900; f++) {
      printf "{\"frame\": %d, \"x\": %d, \"y\": 200, \"w\": 160, \"h\": 200, \"label\": \"face\", \"confidence\": 0.93, \"trace_id\": 1, \"identity\": \"alice\"}\n", f, 40 + f
      # Detected every 5th frame only: the trace stream interpolates between.
      if (f >= 150 && f < 750 && f % 5 == 0)
        printf "{\"frame\": %d, \"x\": %d, \"y\": 380, \"w\": 120, \"h\": 150, \"label\": \"face\", \"confidence\": 0.81, \"trace_id\": 2}\n", f, 1100 - (f - 150)
      if (f % 2 == 0)
        printf "{\"frame\": %d, \"x\": 900, \"y\": 60, \"w\": 300, \"h\": 120, \"label\": \"car\", \"confidence\": 0.67}\n", f
    }
  }' > "$demo_dir/detections.jsonl"
  "$framecast" import "$demo_dir/demo.mp4" --uuid "$demo_uuid" --detections "$demo_dir/detections.jsonl" >/dev/null
fi

token=$("$framecast" token --file "$demo_uuid" --ttl 86400)
viewer=$(FRAMECAST_LISTEN=$listen "$framecast" token --file "$demo_uuid" --ttl 86400 --url)
cat <<MSG

framecast demo: file $demo_uuid (token valid 24 h)
  viewer: $viewer
  curl -r 0-99 -o first100.bin -H "Authorization: Bearer $token" http://$listen/api/v1/file/$demo_uuid/video
  curl -o frame450.jpg -H "Authorization: Bearer $token" "http://$listen/api/v1/file/$demo_uuid/thumbnail?frame=450"
  curl -o clip.ts -H "Authorization: Bearer $token" "http://$listen/api/v1/file/$demo_uuid/clip?start_frame=300&end_frame=449&mode=debug"
  curl -D - -o cut.ts -H "Authorization: Bearer $token" "http://$listen/api/v1/file/$demo_uuid/clip?start_frame=310&end_frame=449"  # X-Framecast-Cut: smart
  curl -o bbox.ts -H "Authorization: Bearer $token" "http://$listen/api/v1/file/$demo_uuid/video/bbox?start=300"
  curl -o trace2.ts -H "Authorization: Bearer $token" "http://$listen/api/v1/file/$demo_uuid/trace/2/video?mode=debug"
  (or play one: ffplay "http://$listen/api/v1/file/$demo_uuid/video/bbox?access_token=$token")

MSG
exec "$framecast" serve
