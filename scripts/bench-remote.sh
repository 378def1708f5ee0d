#!/usr/bin/env bash
# Benchmarks of remote media and the shared catalog, side by side in one run (issue 12):
#   1. thumbnail latency of the 5-minute 720p file from an nginx origin on this machine vs
#      the same file local, at frames 100/1000/5000/8900 (median of RUNS uncached requests
#      each, alternating), the ratio (target <= 1.3), and origin requests per thumbnail
#      (from nginx's access log);
#   2. PostgreSQL vs SQLite catalog: thumbnail and clip start latency (time to first byte of
#      a 30-frame clip), median of RUNS, and `framecast import` of 300,000 detections (time,
#      rows/s);
#   3. two instances on one PostgreSQL catalog vs one instance, the same total concurrency
#      (CLIENTS, split evenly) of uncached thumbnails for SECONDS: thumbnails/s and ratio
#      (target >= 0.95).
# Needs PostgreSQL at 127.0.0.1:5432 with trust auth for user postgres (as the tests);
# makes and drops database framecast_bench.
# Usage: scripts/bench-remote.sh [RUNS] [SECONDS] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
seconds_load=${2:-20}
clients=${3:-4}

source scripts/bench-lib.sh
video=$(five_minute_720p)
frames=9000
pg_admin=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
pg_url=${pg_admin%/*}/framecast_bench
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); cores: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  psql -q "$pg_admin" -c 'DROP DATABASE IF EXISTS framecast_bench' 2>/dev/null || true
}
trap cleanup EXIT

# The origin: nginx serving the file's folder on a free port, logging every request.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
origin_port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  log_format ranges '\$request_method \$uri "\$http_range" \$status \$body_bytes_sent';
  access_log $work/nginx/access.log ranges;
  client_body_temp_path $work/nginx/b; proxy_temp_path $work/nginx/p;
  fastcgi_temp_path $work/nginx/f; uwsgi_temp_path $work/nginx/u; scgi_temp_path $work/nginx/s;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$origin_port; root $(dirname "$video"); location / { } }
}
EOF
: > "$work/nginx/access.log"
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
until curl -s -o /dev/null "http://127.0.0.1:$origin_port/"; do sleep 0.1; done
remote_url="http://127.0.0.1:$origin_port/$(basename "$video")"

# start NAME: a server with the current environment; sets $base (and remembers its pid).
start() {
  FRAMECAST_LISTEN=127.0.0.1:0 "$framecast" serve > "$work/serve-$1.out" 2> "$work/serve-$1.err" &
  pids+=($!)
  until grep -qs listening "$work/serve-$1.out"; do sleep 0.1; done
  base=$(sed -n 's/^framecast listening on //p' "$work/serve-$1.out")
}
# ttfb URL: seconds to the first byte of an answer that must be 200.
ttfb() {
  curl -sS -f -o /dev/null -w '%{time_starttransfer}' -H "Authorization: Bearer $token" "$1"
}

# 1. Local vs origin, one SQLite server.
export FRAMECAST_DATA_DIR=$work/data-remote
rm -rf "$FRAMECAST_DATA_DIR"
local_uuid=$("$framecast" import "$video" --uuid 10ca110ca110ca110ca110ca110ca110)
started=$(date +%s.%N)
remote_uuid=$("$framecast" import "$remote_url" --uuid 0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e)
echo "import over HTTP (frame index of $(stat -c %s "$video") bytes): $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
token=$("$framecast" token --all-files)
start remote
echo
echo "1. thumbnail latency, local file vs nginx origin (median of $runs, uncached)"
printf '%6s %9s %9s %7s %17s\n' frame local_s origin_s ratio origin_requests
for n in 100 1000 5000 8900; do
  : > "$work/l"; : > "$work/r"; : > "$work/q"
  for i in $(seq "$runs"); do
    q=$((95 - i))
    ttfb "$base/api/v1/file/$local_uuid/thumbnail?frame=$n&quality=$q" >> "$work/l"; echo >> "$work/l"
    before=$(wc -l < "$work/nginx/access.log")
    ttfb "$base/api/v1/file/$remote_uuid/thumbnail?frame=$n&quality=$q" >> "$work/r"; echo >> "$work/r"
    echo $(( $(wc -l < "$work/nginx/access.log") - before )) >> "$work/q"
  done
  l=$(median < "$work/l"); r=$(median < "$work/r"); q=$(median < "$work/q")
  awk -v n="$n" -v l="$l" -v r="$r" -v q="$q" \
    'BEGIN { printf "%6d %9.3f %9.3f %7.2f %17d\n", n, l, r, r / l, q }'
done
echo "target: ratio <= 1.3"
kill "${pids[-1]}"

# 2. PostgreSQL vs SQLite.
detections=$work/detections-300k.jsonl
if [ ! -s "$detections" ]; then
  awk 'BEGIN { for (i = 0; i < 300000; i++) printf "{\"frame\": %d, \"x\": %d, \"y\": 100, \"w\": 80, \"h\": 90, \"confidence\": 0.9, \"trace_id\": %d, \"identity_id\": \"p%d\"}\n", i % 9000, (i * 37) % 1100, i % 500, i % 500 }' > "$detections"
fi
psql -q "$pg_admin" -c 'DROP DATABASE IF EXISTS framecast_bench' -c 'CREATE DATABASE framecast_bench'
echo
echo "2. PostgreSQL vs SQLite catalog (median of $runs)"
declare -A thumb clip import_s
for store in sqlite postgres; do
  if [ "$store" = postgres ]; then export FRAMECAST_CATALOG=$pg_url; else unset FRAMECAST_CATALOG; fi
  export FRAMECAST_DATA_DIR=$work/data-$store
  rm -rf "$FRAMECAST_DATA_DIR"
  started=$(date +%s.%N)
  uuid=$("$framecast" import "$video" --uuid 5705e5705e5705e5705e5705e5705e57 --detections "$detections")
  import_s[$store]=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  token=$("$framecast" token --all-files)
  start "$store"
  : > "$work/t"; : > "$work/c"
  for i in $(seq "$runs"); do
    ttfb "$base/api/v1/file/$uuid/thumbnail?frame=$((1000 + i * 7))" >> "$work/t"; echo >> "$work/t"
    ttfb "$base/api/v1/file/$uuid/clip?start_frame=$((2000 + i * 250))&end_frame=$((2029 + i * 250))" >> "$work/c"; echo >> "$work/c"
  done
  thumb[$store]=$(median < "$work/t"); clip[$store]=$(median < "$work/c")
  kill "${pids[-1]}"
done
# Import time includes probing the file (the same for both): shown alone for reference.
export FRAMECAST_DATA_DIR=$work/data-probe-only
rm -rf "$FRAMECAST_DATA_DIR"; unset FRAMECAST_CATALOG
probe=$(seconds "$framecast" import "$video")
printf '%-9s %12s %14s %19s %12s\n' catalog thumbnail_s clip_start_s import_300k_s rows/s
for store in sqlite postgres; do
  awk -v s="$store" -v t="${thumb[$store]}" -v c="${clip[$store]}" -v i="${import_s[$store]}" -v p="$probe" \
    'BEGIN { printf "%-9s %12.3f %14.3f %19.2f %12.0f\n", s, t, c, i, 300000 / (i - p) }'
done
awk -v p="$probe" -v a="${thumb[postgres]}" -v b="${thumb[sqlite]}" -v c="${clip[postgres]}" -v d="${clip[sqlite]}" \
  'BEGIN { printf "postgres/sqlite: thumbnail %.2f, clip start %.2f (target within 5%%); rows/s net of the %.2f s probe\n", a / b, c / d, p }'

# 3. Two instances vs one, same total concurrency, on the PostgreSQL catalog and the origin.
export FRAMECAST_CATALOG=$pg_url
export FRAMECAST_DATA_DIR=$work/data-postgres
uuid=$("$framecast" import "$remote_url" --uuid 2002200220022002200220022002200a)
token=$("$framecast" token --all-files)
start one; one=$base
start two; two=$base
# load BASE...: $clients clients over the given servers (round robin) for $seconds_load s;
# prints thumbnails/s (200s only).
load() {
  local servers=("$@") out=$work/load pids_load=() c
  : > "$out"
  for c in $(seq 0 $((clients - 1))); do
    (
      end=$(( $(date +%s%N) + seconds_load * 1000000000 ))
      target=${servers[$((c % ${#servers[@]}))]}
      while [ "$(date +%s%N)" -lt "$end" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $token" \
          "$target/api/v1/file/$uuid/thumbnail?frame=$(( (RANDOM * 32768 + RANDOM) % frames ))&quality=$(( RANDOM % 40 + 60 ))"
      done >> "$out"
    ) &
    pids_load+=($!)
  done
  wait "${pids_load[@]}"
  awk -v s="$seconds_load" '$1 == 200 { n++ } END { printf "%.2f", n / s }' "$out"
}
echo
echo "3. $clients concurrent clients for $seconds_load s, uncached thumbnails from the origin, PostgreSQL catalog"
a=$(load "$one"); b=$(load "$one" "$two"); c=$(load "$one")
awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
  printf "one instance: %.2f/s then %.2f/s; two instances: %.2f/s; ratio two/one %.2f (target >= 0.95)\n", a, c, b, 2 * b / (a + c) }'
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
