#!/usr/bin/env bash
# Benchmark: stream a ~1 GB video through /api/v1/file/:uuid/video and through nginx
# (sendfile) in the same run, on loopback. Prints the throughput ratio framecast/nginx and
# framecast's peak RSS. Usage: scripts/bench-video.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}

BENCH_PACKAGES=nginx-light source scripts/bench-lib.sh
video=$work/big.mkv
if [ ! -s "$video" ]; then
  echo "generating ~1 GB video (MJPEG 720p with noise, 55 s)..." >&2
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=30:allf=t" -t 55 \
    -c:v mjpeg -q:v 2 "$work/partial.mkv"
  mv "$work/partial.mkv" "$video"
fi
size=$(stat -c %s "$video")

serve video "$video" b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1
nginx_prefix=$work/nginx
mkdir -p "$nginx_prefix/logs"
cleanup() {
  kill "$server" 2>/dev/null || true
  [ -f "$nginx_prefix/nginx.pid" ] && kill "$(cat "$nginx_prefix/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
cat > "$nginx_prefix/nginx.conf" <<CONF
worker_processes 1;
pid $nginx_prefix/nginx.pid;
error_log $nginx_prefix/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:18081;
    root $work;
  }
}
CONF
nginx -p "$nginx_prefix" -c "$nginx_prefix/nginx.conf"

# Seconds to download URL to /dev/null (extra curl args after the URL).
fetch() { curl -sS -o /dev/null -w '%{time_total}' "$@"; }

sample_rss() {
  while kill -0 "$server" 2>/dev/null; do
    # Total RSS and its anonymous part (heap, buffers); the rest is mapped libraries.
    awk '/VmRSS/ {total = $2} /RssAnon/ {anon = $2} END {print total, anon}' "/proc/$server/status"
    sleep 0.05
  done
}
sample_rss > "$work/rss.txt" &
sampler=$!

: > "$work/framecast.txt"
: > "$work/nginx.txt"
for _ in $(seq "$runs"); do
  fetch -H "Authorization: Bearer $token" "$base/api/v1/file/$uuid/video" >> "$work/framecast.txt"; echo >> "$work/framecast.txt"
  fetch "http://127.0.0.1:18081/big.mkv" >> "$work/nginx.txt"; echo >> "$work/nginx.txt"
done
kill "$sampler" 2>/dev/null || true
peak_rss_kb=$(cut -d' ' -f1 "$work/rss.txt" | sort -n | tail -1)
peak_anon_kb=$(cut -d' ' -f2 "$work/rss.txt" | sort -n | tail -1)
idle_anon_kb=$(head -1 "$work/rss.txt" | cut -d' ' -f2)

t_framecast=$(median < "$work/framecast.txt")
t_nginx=$(median < "$work/nginx.txt")
awk -v size="$size" -v f="$t_framecast" -v n="$t_nginx" -v rss="$peak_rss_kb" -v anon="$peak_anon_kb" \
  -v idle="$idle_anon_kb" -v runs="$runs" 'BEGIN {
  printf "file: %.2f GB, %d runs each, median\n", size / 1e9, runs
  printf "%-10s %8s %10s\n", "server", "seconds", "MB/s"
  printf "%-10s %8.3f %10.0f\n", "framecast", f, size / f / 1e6
  printf "%-10s %8.3f %10.0f\n", "nginx", n, size / n / 1e6
  printf "throughput ratio framecast/nginx: %.2f (target >= 0.8)\n", n / f
  printf "framecast peak RSS while streaming: %.1f MB (target < 50 MB)\n", rss / 1024
  printf "  of which anonymous memory: %.1f MB (%.1f MB before the first request); the rest is\n", anon / 1024, idle / 1024
  printf "  mapped GStreamer and codec libraries, loaded at startup to validate pipelines/\n"
}'
