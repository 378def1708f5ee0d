#!/usr/bin/env bash
# Installs the Debian package (`make deb`) on this machine, checks the installed system as
# an operator would use it, and purges it again: the files and conffiles, the service's
# user, `framecast check`, an import, the `framecast explain` lines run with
# gst-launch-1.0 without GST_PLUGIN_PATH, the server started as the unit starts it, and
# `systemd-analyze verify` on the unit.
#
# Needs root (or sudo). Refuses to run where framecast is installed already: it would
# replace and then purge that installation.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
deb=$(ls -t target/debian/framecast_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
  echo "test-deb: no target/debian/framecast_*.deb: run make deb" >&2
  exit 1
fi
if dpkg-query -W -f='${Status}' framecast 2>/dev/null | grep -q "ok installed"; then
  echo "test-deb: framecast is installed on this machine; not replacing it" >&2
  exit 1
fi

config=/etc/framecast/framecast.toml
plugin=/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgstframecast.so
user_existed=no
if getent passwd framecast >/dev/null; then user_existed=yes; fi
work=$(mktemp -d)
server_pid=""

cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  $sudo dpkg --purge framecast >/dev/null 2>&1 || true
  if [ "$user_existed" = no ] && getent passwd framecast >/dev/null; then
    $sudo deluser --system --quiet framecast >/dev/null 2>&1 || true
  fi
  $sudo rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "test-deb: FAILED: $*" >&2
  exit 1
}
step() { echo "test-deb: $*" >&2; }

# As the service's user, with the installed config, and with no GST_PLUGIN_PATH anywhere.
as_framecast() {
  $sudo env -u GST_PLUGIN_PATH runuser -u framecast -- "$@"
}

step "installing $deb"
# dpkg refuses while apt or another dpkg holds its lock: wait for it, within a limit.
deadline=$((SECONDS + 120))
until $sudo dpkg -i "$deb" >"$work/dpkg.log" 2>&1; do
  if grep -q "lock" "$work/dpkg.log" && [ $SECONDS -lt $deadline ]; then
    sleep 2
    continue
  fi
  cat "$work/dpkg.log" >&2
  fail "dpkg -i"
done

step "installed files"
[ -x /usr/bin/framecast ] || fail "/usr/bin/framecast"
[ -f "$plugin" ] || fail "$plugin"
[ ! -e /usr/bin/libgstframecast.so ] || fail "a plugin beside the binary"
for conffile in $config /etc/framecast/pipelines/{thumbnail,clip-video,clip-audio,clip-mux}.gst; do
  dpkg-query --control-show framecast conffiles | grep -q "^$conffile\$" ||
    fail "$conffile is not a conffile"
done
getent passwd framecast >/dev/null || fail "no framecast user"
[ "$(stat -c %U /var/lib/framecast)" = framecast ] || fail "/var/lib/framecast not owned by framecast"
env -u GST_PLUGIN_PATH gst-inspect-1.0 framesrc >/dev/null || fail "GStreamer does not find framesrc"

if command -v systemd-analyze >/dev/null; then
  step "systemd-analyze verify"
  # It exits 0 even for some settings it ignores (it only warns): any line naming our
  # unit is a failure too.
  if ! systemd-analyze verify /usr/lib/systemd/system/framecast.service >"$work/verify.log" 2>&1 ||
    grep -i "framecast" "$work/verify.log"; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify"
  fi
else
  step "systemd-analyze not installed: unit not verified"
fi

step "framecast check"
as_framecast framecast --config $config check | grep -q "pipelines in /etc/framecast/pipelines are valid" ||
  fail "framecast check"

step "import"
chmod 755 "$work"
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=320x240:rate=25:duration=2 \
  -f lavfi -i sine=duration=2 -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$work/demo.mp4"
uuid=$(as_framecast framecast --config $config import "$work/demo.mp4")
[ ${#uuid} -eq 32 ] || fail "import printed $uuid"
as_framecast framecast --config $config files | grep -q "$uuid" || fail "framecast files"

# Each explained line, run as printed (by the shell, as an operator pastes it).
run_explained() {
  local url=$1 output=$2
  local line
  line=$(as_framecast framecast --config $config explain "$url" --output "$output")
  case "$line" in
    *GST_PLUGIN_PATH*) fail "explain still sets GST_PLUGIN_PATH: $line" ;;
    gst-launch-1.0*) ;;
    *) fail "explain printed $line" ;;
  esac
  $sudo env -u GST_PLUGIN_PATH sh -c "$line" || fail "$line"
}

step "explain: thumbnail"
run_explained "/api/v1/file/$uuid/thumbnail?frame=10" "$work/frame.jpg"
[ "$(head -c 2 "$work/frame.jpg" | od -An -tx1 | tr -d ' ')" = ffd8 ] || fail "frame.jpg is no JPEG"

step "explain: clip"
run_explained "/api/v1/file/$uuid/clip?start_frame=5&end_frame=29" "$work/clip.ts"
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
  -of csv=p=0 "$work/clip.ts" | awk "NR == 1")
[ "$frames" = 25 ] || fail "clip has $frames frames, not 25"

step "serve, as the unit starts it"
# setpriv execs the server in place (runuser would stay as its parent), so that the
# signal and the exit status below are the server's own.
$sudo env -u GST_PLUGIN_PATH FRAMECAST_LISTEN=127.0.0.1:0 HOME=/var/lib/framecast \
  setpriv --reuid=framecast --regid=framecast --init-groups \
  framecast --config $config serve >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
deadline=$((SECONDS + 30))
until grep -q "listening on" "$work/serve.out" 2>/dev/null; do
  kill -0 $server_pid 2>/dev/null || { cat "$work/serve.err" >&2; fail "serve exited"; }
  [ $SECONDS -lt $deadline ] || fail "serve did not start"
  sleep 0.2
done
base=$(sed -n 's/^framecast listening on //p' "$work/serve.out")
token=$(as_framecast framecast --config $config token --file "$uuid")
status=$(curl -s -o "$work/served.jpg" -w '%{http_code}' -H "Authorization: Bearer $token" \
  "$base/api/v1/file/$uuid/thumbnail?frame=10")
[ "$status" = 200 ] || fail "thumbnail answered $status"
cmp -s "$work/served.jpg" "$work/frame.jpg" || fail "the served thumbnail differs from the explained one"
# The token secret was generated by the service's user, readable by it alone.
[ "$(stat -c '%U %a' /var/lib/framecast/jwt_secret)" = "framecast 600" ] || fail "jwt_secret owner/mode"
# A graceful stop exits 0.
$sudo kill -TERM $server_pid
wait $server_pid || fail "serve exited $? after SIGTERM"
server_pid=""

step "purge"
$sudo dpkg --purge framecast >/dev/null
[ ! -e /usr/bin/framecast ] && [ ! -e "$plugin" ] && [ ! -e /var/lib/framecast ] &&
  [ ! -e /etc/framecast ] || fail "files left after purge"
step "ok"
