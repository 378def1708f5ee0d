#!/usr/bin/env bash
# Hostile traffic (issue 19's probe, bounded, loopback only): a release server on a free
# port with its own data dir and an open files limit of 256 (as in the probe), then:
#   silent      300 connections that send nothing
#   slowloris   200 connections sending a header a byte a second
#   big-heads   300 connections sending 380 KB of unfinished headers
#   methods     1000 requests with 60 KB method names, 1000 with 1 KB ones
#   head        500 HEAD /video, 50 HEAD /thumbnail
#   thumbnails  8 thumbnails of 7680x7680 at quality 100, 4 at a time (over the pixel
#               limit: refused), then 8 of 3840x2160 (the largest allowed), 4 at a time
# For each: the answers (status codes, or closed without one), whether /health answered
# meanwhile, and how long the connections stayed. Around them: the server's RSS, open
# file descriptors and /metrics size, before, after, and after 5 s idle.
#
#   scripts/hostile.sh                  everything (about 2 minutes)
#   scripts/hostile.sh silent methods   some batteries only
#   HOSTILE_NOFILE=1024 scripts/hostile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh
# Another build to compare with (e.g. main's): HOSTILE_BIN=/path/to/framecast.
framecast=${HOSTILE_BIN:-$framecast}
nofile=${HOSTILE_NOFILE:-256}
batteries=${*:-silent slowloris big-heads methods head thumbnails}

video=$(test_video hostile-720p 20)
export FRAMECAST_DATA_DIR=$work/data-hostile
rm -rf "$FRAMECAST_DATA_DIR"
uuid=$("$framecast" import "$video" --uuid 1057110e1057110e1057110e1057110e)
token=$("$framecast" token --file "$uuid")
rm -f "$work/serve-hostile.out"
FRAMECAST_LISTEN=127.0.0.1:0 prlimit --nofile="$nofile:$nofile" "$framecast" serve \
  > "$work/serve-hostile.out" 2> "$work/serve-hostile.err" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until grep -qs listening "$work/serve-hostile.out"; do sleep 0.1; done
base=$(sed -n 's/^framecast listening on //p' "$work/serve-hostile.out")

state() {
  local rss peak fds metrics
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
  peak=$(awk '/^VmHWM/ {print $2}' "/proc/$server/status")
  fds=$(ls "/proc/$server/fd" | wc -l)
  metrics=$(curl -s "$base/metrics" | wc -c)
  printf '%-16s RSS %4d MB (peak %4d MB)   fds %4d   /metrics %8d bytes\n' \
    "$1" $(( rss / 1024 )) $(( peak / 1024 )) "$fds" "$metrics"
}

echo "server pid $server, open files limit $nofile, $base"
state "start"
python3 - "${base#http://}" "$uuid" "$token" $batteries <<'EOF'
import socket, sys, threading, time, collections

host, port = sys.argv[1].split(":")
port = int(port)
uuid, token = sys.argv[2], sys.argv[3]
batteries = sys.argv[4:]

def connect():
    return socket.create_connection((host, port), timeout=2)

def until(seconds):
    """An overall deadline: a battery stops trying past it, whatever the server does."""
    end = time.time() + seconds
    return lambda: time.time() < end

def request(raw, timeout=30):
    """Sends raw bytes on a new connection; the status code, or 'closed' / 'refused'."""
    try:
        s = connect()
    except OSError:
        return "refused"
    s.settimeout(timeout)
    try:
        s.sendall(raw)
        head = s.recv(64)
    except OSError:
        return "closed"
    finally:
        s.close()
    return head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "closed"

def health():
    t = time.time()
    status = request(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 15)
    return f"{status} in {(time.time() - t) * 1000:.0f} ms"

def hold(sockets, limit):
    """Waits until the server has closed every socket (or `limit` s); how long it took."""
    t = time.time()
    open_ = list(sockets)
    while open_ and time.time() - t < limit:
        still = []
        for s in open_:
            s.setblocking(False)
            try:
                if s.recv(65536) in (b"",):
                    continue
                still.append(s)  # an answer came: read on until closed
            except BlockingIOError:
                still.append(s)
            except OSError:
                continue
        open_ = still
        time.sleep(0.2)
    for s in sockets:
        s.close()
    return time.time() - t, len(open_)

def closed(total, left, took):
    if left:
        return f"{left} of {total} still open after {took:.0f} s"
    return f"all closed by the server within {took:.1f} s"

def report(name, answers, extra=""):
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(collections.Counter(answers).items()))
    print(f"  {name:<11} {counts}{extra}", flush=True)

for battery in batteries:
    if battery == "silent":
        sockets, going = [], until(20)
        for _ in range(300):
            if not going():
                break
            try:
                sockets.append(connect())
            except OSError:
                pass
        during = health()
        took, left = hold(sockets, 30)
        report("silent", ["connected"] * len(sockets),
               f"; /health meanwhile {during}; {closed(len(sockets), left, took)}")
    elif battery == "slowloris":
        sockets, going = [], until(20)
        for _ in range(200):
            if not going():
                break
            try:
                s = connect()
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                sockets.append(s)
            except OSError:
                pass
        stop = time.time() + 30
        def trickle():
            while time.time() < stop:
                for s in sockets:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                time.sleep(1)
        threading.Thread(target=trickle, daemon=True).start()
        time.sleep(0.5)
        during = health()
        took, left = hold(sockets, 30)
        stop = 0
        report("slowloris", ["connected"] * len(sockets),
               f"; /health meanwhile {during}; {closed(len(sockets), left, took)}")
    elif battery == "big-heads":
        sockets, answers, going = [], [], until(20)
        chunk = b"X-Big: " + b"a" * 1000 + b"\r\n"
        for _ in range(300):
            if not going():
                answers.append("not tried (battery over 20 s)")
                continue
            try:
                s = connect()
            except OSError:
                answers.append("connect failed")
                continue
            try:
                s.settimeout(1)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                for _ in range(380):
                    s.sendall(chunk)
            except OSError:
                pass  # the server stopped reading: its answer may still be there
            sockets.append(s)
        reading = until(10)
        for s in sockets:
            try:
                s.settimeout(0.5 if reading() else 0.01)
                head = s.recv(64)
                answers.append(head.split(b" ")[1].decode() if head else "closed")
            except OSError:
                answers.append("no answer")
            s.close()
        report("big-heads", answers, f"; /health after {health()}")
    elif battery == "methods":
        answers = []
        for size in (60_000, 1_000):
            going = until(30)
            for i in range(1000):
                if not going():
                    answers.append(f"{size // 1000} KB: not tried (over 30 s)")
                    continue
                method = (b"M%d" % i).ljust(size, b"X")
                answers.append(f"{size // 1000} KB: " + request(method + b" /health HTTP/1.1\r\nHost: x\r\n\r\n"))
        report("methods", answers)
    elif battery == "head":
        answers = []
        def heads(path, n):
            s = connect()
            for _ in range(n):
                s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
                head = b""
                while b"\r\n\r\n" not in head:
                    data = s.recv(4096)
                    if not data:
                        break
                    head += data
                answers.append(f"{path.split('/')[-1].split('?')[0]} " + (head.split(b" ")[1].decode() if head else "closed"))
            s.close()
        threads = [threading.Thread(target=heads, args=(f"/api/v1/file/{uuid}/video", 125)) for _ in range(4)]
        threads += [threading.Thread(target=heads, args=(f"/api/v1/file/{uuid}/thumbnail?frame={i}", 25)) for i in range(2)]
        t = time.time()
        for th in threads: th.start()
        for th in threads: th.join()
        report("head", answers, f"; in {time.time() - t:.1f} s")
    elif battery == "thumbnails":
        answers = []
        def bomb(i, size):
            raw = (f"GET /api/v1/file/{uuid}/thumbnail?frame={i * 7}&width={size[0]}&height={size[1]}&quality=100 HTTP/1.1\r\n"
                   f"Host: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n").encode()
            answers.append(f"{size[0]}x{size[1]} {request(raw, 60)}")
        for size in [(7680, 7680), (3840, 2160)]:
            for round_ in range(2):
                threads = [threading.Thread(target=bomb, args=(round_ * 4 + i, size)) for i in range(4)]
                for th in threads: th.start()
                for th in threads: th.join()
        report("thumbnails", answers)
EOF
state "after"
sleep 5
state "after 5 s idle"
echo "connection metrics:"
curl -s "$base/metrics" | grep -E '^framecast_(open_connections|connections_)' | sed 's/^/  /'
echo "method label values: $(curl -s "$base/metrics" | grep -o 'method="[^"]*"' | sort -u | tr '\n' ' ')"
