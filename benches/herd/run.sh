#!/usr/bin/env bash
# Thundering herd on one uncached URL: CLIENTS concurrent clients (one connection each, requests written at the
# same moment) ask a cache for /slow/DELAY_MS?run=..., a URL the sample origin answers after DELAY_MS. For each
# server and run: how many requests reached the origin, the answers by status, how many distinct bodies, and the
# latency of the median, p99 and slowest client (from the common start to its last byte).
#
# edgecache is compared with nginx (proxy_cache + proxy_cache_lock) and Varnish (its waiting list), configured as
# in benches/load/ (the same templates). The server under test runs on CPU 0; the origin and the clients
# (benches/herd/herd.py, Python asyncio) share CPU 1. Everything listens on 127.0.0.1; every process started here
# is stopped on exit.
#
# Usage: benches/herd/run.sh
# Environment (defaults in brackets):
#   CLIENTS [1000]  clients per herd          DELAY_MS [500]  origin's answer time
#   RUNS [3]  herds per server                SERVERS [edgecache nginx varnish origin]
#   ("origin" sends the herd to the origin directly: the floor of this client and origin, with no cache)
#   EDGECACHE_BIN  use this edgecache binary instead of building target/release/edgecache
#   RESULTS  where to write results.tsv and table.md [a new temporary folder, kept]
set -euo pipefail

CLIENTS=${CLIENTS:-1000}
DELAY_MS=${DELAY_MS:-500}
RUNS=${RUNS:-3}
SERVERS=${SERVERS:-"edgecache nginx varnish origin"}
SERVER_CPU=0
LOAD_CPU=1

# Ports apart from benches/load's, so that both can run on one machine.
ORIGIN_PORT=9200
EDGECACHE_PORT=8280
ADMIN_PORT=9902
NGINX_PORT=8281
VARNISH_PORT=8282

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LOAD=$REPO/benches/load
TMP=$(mktemp -d /tmp/edgecache-herd.XXXXXX)
RESULTS=${RESULTS:-$TMP/results}
CACHE_DIR=$TMP/nginx-cache
mkdir -p "$RESULTS" "$CACHE_DIR"

log() { printf '[herd %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$CACHE_DIR" "$TMP/varnish"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A herd of 1,000 needs 1,000 sockets in the client and as many in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [[ -z ${EDGECACHE_BIN:-} ]]; then
    log "building edgecache --release"
    (cd "$REPO" && cargo build --release --bin edgecache)
    EDGECACHE_BIN=${CARGO_TARGET_DIR:-$REPO/target}/release/edgecache
fi
[[ -x $EDGECACHE_BIN ]] || { log "no edgecache binary at $EDGECACHE_BIN"; exit 1; }

# Fills a template of benches/load: @NAME@ becomes the value of the shell variable NAME.
render() {
    local template=$1 out=$2 text name
    text=$(<"$template")
    for name in TMP CACHE_DIR ORIGIN_PORT EDGECACHE_PORT ADMIN_PORT NGINX_PORT VARNISH_PORT NGINX_TLS_LISTEN; do
        text=${text//@$name@/${!name:-}}
    done
    printf '%s\n' "$text" >"$out"
}

wait_http() {
    local url=$1 pid=$2
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

start_pinned() {
    local cpu=$1 logfile=$2
    shift 2
    taskset -c "$cpu" "$@" >"$logfile" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}

declare -A PORT
start_server() {
    local name=$1
    case $name in
        edgecache)
            render "$LOAD/edgecache.toml.in" "$TMP/edgecache.toml"
            RUST_LOG=warn start_pinned "$SERVER_CPU" "$TMP/edgecache.log" "$EDGECACHE_BIN" --config "$TMP/edgecache.toml"
            PORT[$name]=$EDGECACHE_PORT
            ;;
        nginx)
            mkdir -p "$TMP/nginx"
            NGINX_TLS_LISTEN=""
            render "$LOAD/nginx.conf.in" "$TMP/nginx.conf"
            start_pinned "$SERVER_CPU" "$TMP/nginx/stderr.log" nginx -p "$TMP/nginx" -c "$TMP/nginx.conf"
            PORT[$name]=$NGINX_PORT
            ;;
        varnish)
            render "$LOAD/varnish.vcl.in" "$TMP/varnish.vcl"
            start_pinned "$SERVER_CPU" "$TMP/varnish.log" varnishd -F -j none -n "$TMP/varnish" \
                -a "127.0.0.1:$VARNISH_PORT" -f "$TMP/varnish.vcl" -s malloc,256M \
                -p thread_pools=1 -p thread_pool_min=200 -p thread_pool_max=2000
            PORT[$name]=$VARNISH_PORT
            ;;
        origin)
            # The floor: the herd sent to the origin itself, no cache (every client is an origin request).
            PORT[$name]=$ORIGIN_PORT
            return 0
            ;;
        *) log "unknown server $name"; exit 1 ;;
    esac
    wait_http "http://127.0.0.1:${PORT[$name]}/bytes/1" "$STARTED" || { log "$name did not start"; exit 1; }
}

# The sample origin numbers the requests it answers in x-origin-requests; a probe reads the count.
origin_count() {
    curl -s -D - -o /dev/null "http://127.0.0.1:$ORIGIN_PORT/" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-origin-requests"{print $2}'
}

start_pinned "$LOAD_CPU" "$TMP/origin.log" "$EDGECACHE_BIN" origin --listen "127.0.0.1:$ORIGIN_PORT"
wait_http "http://127.0.0.1:$ORIGIN_PORT/" "$STARTED" || { log "origin did not start"; exit 1; }
for server in $SERVERS; do start_server "$server"; done

printf 'server\trun\torigin_requests\tstatuses\tdistinct_bodies\tp50_ms\tp99_ms\tmax_ms\n' >"$RESULTS/results.tsv"
for run in $(seq "$RUNS"); do
    for server in $SERVERS; do
        path="/slow/$DELAY_MS?herd=$server-$run-$$"
        before=$(origin_count)
        json=$(taskset -c "$LOAD_CPU" python3 "$HERE/herd.py" 127.0.0.1 "${PORT[$server]}" "$path" "$CLIENTS")
        after=$(origin_count)
        origin_requests=$((after - before - 1))
        log "$server run $run: origin requests $origin_requests, $json"
        python3 - "$server" "$run" "$origin_requests" "$json" >>"$RESULTS/results.tsv" <<'EOF'
import json, sys
server, run, origin, r = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
statuses = " ".join(f"{k}x{v}" for k, v in sorted(r["statuses"].items()))
print("\t".join([server, run, origin, statuses, str(r["distinct_bodies"]), str(r["p50_ms"]), str(r["p99_ms"]), str(r["max_ms"])]))
EOF
        sleep 1
    done
done

{
    printf '| server | run | origin requests | answers | distinct bodies | p50 ms | p99 ms | slowest ms |\n'
    printf '| --- | --- | --- | --- | --- | --- | --- | --- |\n'
    tail -n +2 "$RESULTS/results.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}'
} >"$RESULTS/table.md"
cat "$RESULTS/table.md"
log "results in $RESULTS"
