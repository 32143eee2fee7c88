#!/usr/bin/env bash
# User-space instructions per cache hit, counted by callgrind: a measure of the hit path that does not move with
# the load on a shared machine (wall-clock figures do), for comparing two builds of edgecache, or edgecache with
# the ceiling (the bare sample origin, hit directly).
#
# Starts the sample origin and edgecache (under valgrind) on 127.0.0.1, warms a hot set of HOT URLs, runs wrk for a
# few seconds so that connections and tables settle, zeroes the counters, sends exactly N hits over 8 keep-alive
# connections, and prints the instructions counted divided by the requests answered. Work that runs on a timer
# (sweeps, tickers) is counted too, and weighs more than it would at full speed, since valgrind runs the program
# ~50x slower: compare builds with each other, not with the load test's wall-clock figures.
#
# Usage: benches/hit_instructions.sh [BIN] [N]      BIN [target/release/edgecache]  N [2000]
# Under `taskset -c 0 benches/hit_instructions.sh ...` the server sees one CPU and runs the single-threaded runtime,
# as it does in the load harness; unpinned it runs a worker per CPU.
# Environment: SIZE [1024] body size; HOT [100] URLs in the hot set; TARGET [edgecache] or ceiling.
# Needs valgrind and wrk (apt-get install valgrind wrk). Everything started here is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-$HERE/../target/release/edgecache}
N=${2:-2000}
SIZE=${SIZE:-1024}
HOT=${HOT:-100}
TARGET=${TARGET:-edgecache}
PORT=18181
ORIGIN_PORT=19181
ADMIN_PORT=19182
for tool in valgrind callgrind_control callgrind_annotate wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install valgrind wrk curl)" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "no edgecache binary at $BIN (cargo build --release)" >&2; exit 1; }
# The script works in a temporary folder: a relative path must not lose its meaning there.
BIN=$(realpath "$BIN")

TMP=$(mktemp -d /tmp/edgecache-instructions.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

cat >"$TMP/edgecache.toml" <<EOF
[node]
id = "bench-edge"
[server]
listen = ["127.0.0.1:$PORT"]
[origin]
url = "http://127.0.0.1:$ORIGIN_PORT"
[cache]
memory = "1GiB"
max_object_size = "16MiB"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
EOF

cd "$TMP"
if [[ $TARGET == ceiling ]]; then
    valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" "$BIN" origin --listen "127.0.0.1:$PORT" \
        >"$TMP/server.log" 2>&1 &
    PIDS+=($!)
    SERVER=$!
else
    "$BIN" origin --listen "127.0.0.1:$ORIGIN_PORT" >"$TMP/origin.log" 2>&1 &
    PIDS+=($!)
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$TMP/callgrind.out" "$BIN" \
        --config "$TMP/edgecache.toml" >"$TMP/server.log" 2>&1 &
    PIDS+=($!)
    SERVER=$!
fi
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.2; done
for k in $(seq 0 $((HOT - 1))); do curl -s -o /dev/null "http://127.0.0.1:$PORT/bytes/$SIZE?k=$k"; done

cat >"$TMP/hits.lua" <<EOF
local i, n = 0, 0
request = function()
  i = (i + 1) % $HOT
  return wrk.format("GET", "/bytes/$SIZE?k=" .. i)
end
response = function()
  n = n + 1
  if n >= LIMIT then wrk.thread:stop() end
end
EOF
sed "s/LIMIT/1e12/" "$TMP/hits.lua" >"$TMP/settle.lua"
sed "s/LIMIT/$N/" "$TMP/hits.lua" >"$TMP/count.lua"
wrk -t1 -c8 -d3s -s "$TMP/settle.lua" "http://127.0.0.1:$PORT" >/dev/null
callgrind_control -z "$SERVER" >/dev/null
wrk -t1 -c8 -d120s -s "$TMP/count.lua" "http://127.0.0.1:$PORT" >"$TMP/wrk.out"
callgrind_control -d "$SERVER" >/dev/null
sleep 1
requests=$(awk '/requests in/{print $1}' "$TMP/wrk.out")
profile=$(ls -t "$TMP"/callgrind.out* | head -1)
total=$(callgrind_annotate "$profile" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "$TARGET: $requests hits of $SIZE B, $total instructions: $((total / requests)) per hit"
echo "profile: $profile (callgrind_annotate --inclusive=yes $profile | less)"
