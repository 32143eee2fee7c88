#!/usr/bin/env bash
# A/B of the hit path, end to end: a baseline binary (BASE, e.g. a build of main) against this one (NEW) with the
# access log off, on as text and on as JSON (stderr to /dev/null), 1 KiB hits, rounds interleaved, the node pinned
# to CPU 0 and wrk to CPU 1. Method and figures: benches/README.md.
#   BASE=/tmp/edgecache-main NEW=target/release/edgecache benches/access_log_ab.sh
# Needs wrk (apt-get install wrk). Build both binaries the same way, e.g.
#   CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo build --release --bin edgecache
set -u
BASE=${BASE:?a baseline edgecache binary}
NEW=${NEW:-target/release/edgecache}
NEW=$(realpath "$NEW"); BASE=$(realpath "$BASE")
work=$(mktemp -d)
cd "$work"
"$BASE" origin --listen 127.0.0.1:19100 2>/dev/null & ORIGIN=$!
sleep 0.5
conf() { printf '[node]\nid = "ab"\n[server]\nlisten = ["127.0.0.1:19180"]\n[origin]\nurl = "http://127.0.0.1:19100"\n[admin]\nlisten = "127.0.0.1:19190"\n%s\n' "$1" > "$2"; }
conf "" main.toml
conf "" off.toml
conf $'[log]\naccess = true' on.toml
for round in 1 2 3; do
  for variant in off main json text main off; do
    case $variant in
      main) bin=$BASE; cfg=main.toml; fmt=text;;
      off) bin=$NEW; cfg=off.toml; fmt=text;;
      text) bin=$NEW; cfg=on.toml; fmt=text;;
      json) bin=$NEW; cfg=on.toml; fmt=json;;
    esac
    taskset -c 0 "$bin" --log-format $fmt --config $cfg 2>/dev/null & NODE=$!
    sleep 0.5
    curl -s -o /dev/null http://127.0.0.1:19180/bytes/1024
    rps=$(taskset -c 1 wrk -t1 -c32 -d5s --latency http://127.0.0.1:19180/bytes/1024 | awk '/Requests\/sec/ {print $2} / 99%/ {p99=$2} END {print p99}' | tr '\n' ' ')
    echo "$round $variant $rps"
    kill $NODE; wait $NODE 2>/dev/null
  done
done
kill $ORIGIN
rm -rf "$work"
