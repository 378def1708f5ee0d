# Shared by the bench-*.sh scripts (sourced, not run): build, a work dir, test media, a
# server on a free loopback port, and small statistics helpers. Extra packages to install
# come in $BENCH_PACKAGES, not as arguments: sourced without any, "$@" is the calling
# script's own (its RUNS).

# shellcheck disable=SC2086 # a space-separated list
scripts/install-deps.sh ${BENCH_PACKAGES:-}
cargo build --release --workspace --quiet
framecast=$PWD/target/release/framecast
work=${BENCH_DIR:-target/bench}
mkdir -p "$work"
work=$(cd "$work" && pwd)
export FRAMECAST_JWT_SECRET=bench FRAMECAST_LOG=warn

# test_video NAME SECONDS [SIZE] [GOP] [PRESET]: $work/NAME.mp4, 30 fps H.264 (default
# 1280x720, GOP 250, x264 veryfast) + AAC, made once.
test_video() {
  local video=$work/$1.mp4 size=${3:-1280x720} gop=${4:-250} preset=${5:-veryfast}
  if [ ! -s "$video" ]; then
    echo "generating $video..." >&2
    ffmpeg -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=$size:rate=30:duration=$2" \
      -f lavfi -i "sine=frequency=440:duration=$2" \
      -c:v libx264 -preset "$preset" -g "$gop" -keyint_min "$gop" -sc_threshold 0 \
      -pix_fmt yuv420p -c:a aac -shortest "$work/partial-$1.mp4"
    mv "$work/partial-$1.mp4" "$video"
  fi
  echo "$video"
}

# The 5-minute file the issues' benchmarks name.
five_minute_720p() { test_video 5min-720p 300; }

# serve NAME VIDEO UUID [DETECTIONS]: imports VIDEO (with the detections file DETECTIONS)
# into its own data dir and starts a server; sets $uuid, $token, $base and $server (killed
# on exit).
serve() {
  export FRAMECAST_DATA_DIR=$work/data-$1
  uuid=$("$framecast" import "$2" --uuid "$3" ${4:+--detections "$4"})
  token=$("$framecast" token --file "$uuid")
  # Removed first: the shell truncates it in the background job, and a previous run's
  # "listening" line read before that would name a dead server's port.
  rm -f "$work/serve-$1.out"
  FRAMECAST_LISTEN=127.0.0.1:0 "$framecast" serve > "$work/serve-$1.out" &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  until grep -qs listening "$work/serve-$1.out"; do sleep 0.1; done
  base=$(sed -n 's/^framecast listening on //p' "$work/serve-$1.out")
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# seconds COMMAND...: wall-clock seconds the command took (its output discarded).
seconds() {
  local t0 t1
  t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'
}

# clip_x264 NAME: the value of x264enc's NAME= in pipelines/clip-video.gst (empty if unset).
clip_x264() {
  grep -v '^ *#' pipelines/clip-video.gst | grep -o "[ ]$1=[^ ]*" | cut -d= -f2
}

# The x264 settings of pipelines/clip-video.gst that differ from the preset, as ffmpeg's
# -x264-params, so that ffmpeg can also be run doing the same work as framecast.
clip_x264_params() {
  local params="keyint=$(clip_x264 key-int-max)" value
  for name in bframes rc-lookahead; do
    value=$(clip_x264 "$name")
    if [ -n "$value" ]; then params+=":$name=$value"; fi
  done
  if [ "$(clip_x264 sliced-threads)" = true ]; then params+=":sliced-threads=1"; fi
  echo "$params"
}

# psnr ENCODED SOURCE SECONDS FRAMES: average PSNR of ENCODED against SOURCE's FRAMES frames
# from SECONDS.
psnr() {
  ffmpeg -hide_banner -nostats -i "$1" -ss "$3" -i "$2" -frames:v "$4" -lavfi psnr -f null - 2>&1 |
    sed -n 's/.*average:\([0-9.inf]*\).*/\1/p'
}
