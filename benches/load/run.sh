#!/usr/bin/env bash
# Side-by-side load test of cache hits: edgecache against nginx proxy_cache, Varnish and HAProxy's cache, and
# against the "ceiling" (the sample origin itself, a bare hyper server answering from memory, hit directly).
#
# Every server under test runs pinned to CPU 0; the load generator (wrk) and the origin share CPU 1. For each
# body size, each run and each server: warm the hot set, then `wrk -t1 -c64 --latency` over the hot set of
# URLs /bytes/SIZE?k=0..HOT-1. The table shows the median over RUNS of req/s and of p99 latency, the server's
# CPU use, and ratios. Everything listens on 127.0.0.1 and every process started here is stopped on exit.
#
# MODE=compress measures hits on a compressible HTML page (/html/SIZE?k=...) for clients sending
# `Accept-Encoding: gzip, br`: edgecache (compresses once, serves the stored br variant) against nginx with
# `gzip on` (proxy_cache stores identity and gzips every hit; default level 1, and level 6 as nginx-gzip6) and
# Varnish (do_gzip: stores gzip). The table adds the bytes on the wire per response (headers included).
#
# Usage: benches/load/run.sh           (as root the first time: installs nginx, varnish, haproxy, wrk)
# Environment (defaults in brackets):
#   DURATION [10s]  length of one wrk run        RUNS [3]  runs per (server, size); the median is reported
#   SIZES [1024 16384 262144]  body sizes        HOT [1000]  URLs in the hot set
#   CONNS [64]  wrk connections                  SERVERS [ceiling edgecache nginx varnish haproxy]
#   NICE [-10]  niceness of the servers, origin and wrk (negative needs root)
#   STEAL_MAX_MS [20]  a run during which the hypervisor took more of CPUs 0 and 1 is run again, up to
#                      STEAL_RETRIES [3] times (results.tsv keeps the last run's stolen ms)
#   TLS [1]  also run the HTTPS 1 KiB comparison (edgecache/rustls vs nginx/OpenSSL); 0 to skip
#   MODE [bytes]  bytes: /bytes/SIZE; compress: /html/SIZE with Accept-Encoding (SIZES [65536], TLS [0],
#                 SERVERS [edgecache nginx nginx-gzip6 varnish])
#   EDGECACHE_BIN  use this edgecache binary instead of building target/release/edgecache
#   RESULTS  where to write results.tsv and table.md [a new temporary folder, kept]
set -euo pipefail

# ---- settings ----------------------------------------------------------------------------------------------
MODE=${MODE:-bytes}
DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
HOT=${HOT:-1000}
CONNS=${CONNS:-64}
if [[ $MODE == compress ]]; then
    SIZES=${SIZES:-65536}
    SERVERS=${SERVERS:-"edgecache nginx nginx-gzip6 varnish"}
    TLS=${TLS:-0}
    BENCH_PATH=html
    BENCH_AE="gzip, br"
    NGINX_GZIP="gzip on; gzip_types text/html; gzip_vary on; gzip_proxied any;"
    VARNISH_GZIP='sub vcl_backend_response { if (beresp.http.content-type ~ "^text/") { set beresp.do_gzip = true; } }'
else
    SIZES=${SIZES:-"1024 16384 262144"}
    SERVERS=${SERVERS:-"ceiling edgecache nginx varnish haproxy"}
    TLS=${TLS:-1}
    BENCH_PATH=bytes
    BENCH_AE=""
    NGINX_GZIP=""
    VARNISH_GZIP=""
fi
export BENCH_PATH BENCH_AE
# Niceness of everything this script starts: on a machine that also runs other work, a negative value keeps the
# servers and wrk from sharing their CPUs with it (the same for every server). Needs root; ignored otherwise.
# It does not help against work in another cgroup, which keeps its share whatever the niceness.
NICE=${NICE:--10}
STEAL_MAX_MS=${STEAL_MAX_MS:-20}
STEAL_RETRIES=${STEAL_RETRIES:-3}
SERVER_CPU=0
LOAD_CPU=1

ORIGIN_PORT=9000
CEILING_PORT=9100
EDGECACHE_PORT=8080
ADMIN_PORT=9901
NGINX_PORT=8081
VARNISH_PORT=8082
HAPROXY_PORT=8083
EDGECACHE_TLS_PLAIN_PORT=8090
EDGECACHE_TLS_PORT=8443
NGINX_TLS_PORT=8444
NGINX_GZIP6_PORT=8084

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TMP=$(mktemp -d /tmp/edgecache-bench.XXXXXX)
RESULTS=${RESULTS:-$TMP/results}
mkdir -p "$RESULTS"
# nginx keeps its cache in files: put them on tmpfs, as one would in production for a memory cache.
if [[ -d /dev/shm && -w /dev/shm ]]; then CACHE_DIR=$(mktemp -d /dev/shm/edgecache-bench-nginx.XXXXXX); else CACHE_DIR=$TMP/nginx-cache; fi

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- cleanup: every process started here is remembered and stopped on exit -----------------------------------
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Give each process up to 5 s to exit, then kill it.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$CACHE_DIR" "$TMP/varnish"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- tools -----------------------------------------------------------------------------------------------------
install_tools() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v varnishd >/dev/null || missing+=(varnish)
    command -v haproxy >/dev/null || missing+=(haproxy)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v curl >/dev/null || missing+=(curl)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v taskset >/dev/null || missing+=(util-linux)
    if ((${#missing[@]})); then
        [[ $(id -u) == 0 ]] || { log "missing ${missing[*]}: run once as root to install them"; exit 1; }
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # Debian starts the packaged services on install where it can; this harness runs its own instances only.
}

build_edgecache() {
    if [[ -n ${EDGECACHE_BIN:-} ]]; then
        log "using $EDGECACHE_BIN"
    else
        log "building edgecache --release (a few minutes the first time)"
        (cd "$REPO" && cargo build --release --bin edgecache)
        EDGECACHE_BIN=$REPO/target/release/edgecache
    fi
    [[ -x $EDGECACHE_BIN ]] || { log "no edgecache binary at $EDGECACHE_BIN"; exit 1; }
}

# Fills a template: @NAME@ becomes the value of the shell variable NAME.
render() {
    local template=$1 out=$2 text name
    text=$(<"$template")
    for name in TMP CACHE_DIR ORIGIN_PORT EDGECACHE_PORT ADMIN_PORT NGINX_PORT VARNISH_PORT HAPROXY_PORT \
        EDGECACHE_TLS_PLAIN_PORT EDGECACHE_TLS_PORT NGINX_TLS_LISTEN NGINX_GZIP NGINX_GZIP6_SERVER VARNISH_GZIP; do
        text=${text//@$name@/${!name:-}}
    done
    printf '%s\n' "$text" >"$out"
}

# Waits until something answers HTTP(S) on a URL; false after 15 s or when the process $2 died.
wait_http() {
    local url=$1 pid=$2
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -ks -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# Starts "$@" pinned to CPU $cpu in the background; its pid is left in STARTED and remembered for cleanup.
start_pinned() {
    local cpu=$1 logfile=$2
    shift 2
    nice -n "$NICE" taskset -c "$cpu" "$@" >"$logfile" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}

# ---- servers -----------------------------------------------------------------------------------------------------
declare -A URL       # server name -> base URL
declare -A MAINPID   # server name -> pid whose process tree is the server (for CPU accounting)

start_origin() {
    start_pinned "$LOAD_CPU" "$TMP/origin.log" "$EDGECACHE_BIN" origin --listen "127.0.0.1:$ORIGIN_PORT"
    wait_http "http://127.0.0.1:$ORIGIN_PORT/" "$STARTED" || { log "origin did not start"; cat "$TMP/origin.log"; exit 1; }
}

start_server() {
    local name=$1
    case $name in
        ceiling)
            # A second sample origin, on the servers' CPU: the fastest a hyper server can answer these bodies.
            start_pinned "$SERVER_CPU" "$TMP/ceiling.log" "$EDGECACHE_BIN" origin --listen "127.0.0.1:$CEILING_PORT"
            URL[$name]=http://127.0.0.1:$CEILING_PORT
            ;;
        edgecache)
            render "$HERE/edgecache.toml.in" "$TMP/edgecache.toml"
            RUST_LOG=warn start_pinned "$SERVER_CPU" "$TMP/edgecache.log" "$EDGECACHE_BIN" --config "$TMP/edgecache.toml"
            URL[$name]=http://127.0.0.1:$EDGECACHE_PORT
            ;;
        nginx)
            mkdir -p "$TMP/nginx"
            NGINX_TLS_LISTEN=""
            if [[ $TLS == 1 ]]; then
                NGINX_TLS_LISTEN="listen 127.0.0.1:$NGINX_TLS_PORT ssl backlog=4096;
        ssl_certificate $TMP/tls/cert.pem;
        ssl_certificate_key $TMP/tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;"
            fi
            NGINX_GZIP6_SERVER=""
            if [[ " $SERVERS " == *" nginx-gzip6 "* ]]; then
                # The same cache and proxy settings, gzip at level 6 (edgecache's gzip level) instead of 1.
                NGINX_GZIP6_SERVER="server {
        listen 127.0.0.1:$NGINX_GZIP6_PORT backlog=4096;
        gzip_comp_level 6;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_cache hot;
            proxy_cache_key \$scheme\$host\$request_uri;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status;
        }
    }"
            fi
            render "$HERE/nginx.conf.in" "$TMP/nginx.conf"
            start_pinned "$SERVER_CPU" "$TMP/nginx/stderr.log" nginx -p "$TMP/nginx" -c "$TMP/nginx.conf"
            URL[$name]=http://127.0.0.1:$NGINX_PORT
            ;;
        varnish)
            render "$HERE/varnish.vcl.in" "$TMP/varnish.vcl"
            # -j none: run as the invoking user; one thread pool with enough threads for every connection.
            start_pinned "$SERVER_CPU" "$TMP/varnish.log" varnishd -F -j none -n "$TMP/varnish" \
                -a "127.0.0.1:$VARNISH_PORT" -f "$TMP/varnish.vcl" -s malloc,1G \
                -p thread_pools=1 -p thread_pool_min=200 -p thread_pool_max=1000
            URL[$name]=http://127.0.0.1:$VARNISH_PORT
            ;;
        haproxy)
            render "$HERE/haproxy.cfg.in" "$TMP/haproxy.cfg"
            start_pinned "$SERVER_CPU" "$TMP/haproxy.log" haproxy -db -f "$TMP/haproxy.cfg"
            URL[$name]=http://127.0.0.1:$HAPROXY_PORT
            ;;
        edgecache-tls)
            render "$HERE/edgecache-tls.toml.in" "$TMP/edgecache-tls.toml"
            RUST_LOG=warn start_pinned "$SERVER_CPU" "$TMP/edgecache-tls.log" "$EDGECACHE_BIN" --config "$TMP/edgecache-tls.toml"
            URL[$name]=https://127.0.0.1:$EDGECACHE_TLS_PORT
            ;;
        nginx-gzip6)
            # Served by the nginx started above (same worker, a listener with gzip_comp_level 6).
            URL[$name]=http://127.0.0.1:$NGINX_GZIP6_PORT
            MAINPID[$name]=${MAINPID[nginx]}
            return 0
            ;;
        nginx-tls)
            # Served by the nginx started above (same worker, an extra TLS listener).
            URL[$name]=https://127.0.0.1:$NGINX_TLS_PORT
            MAINPID[$name]=${MAINPID[nginx]}
            return 0
            ;;
        *) log "unknown server $name"; exit 1 ;;
    esac
    MAINPID[$name]=$STARTED
    if ! wait_http "${URL[$name]}/bytes/1" "$STARTED"; then
        log "$name did not start; its log:"
        if [[ $name == nginx ]]; then tail -n 20 "$TMP/nginx/stderr.log" "$TMP/nginx/error.log" >&2 2>/dev/null || true
        else tail -n 20 "$TMP/$name.log" >&2 || true; fi
        return 1
    fi
}

make_cert() {
    mkdir -p "$TMP/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" 2>/dev/null
}

# ---- measuring -----------------------------------------------------------------------------------------------
# Requests the origin has answered so far (each probe counts itself, hence the -1 in misses()).
origin_count() {
    curl -s -D - -o /dev/null --max-time 5 "http://127.0.0.1:$ORIGIN_PORT/bytes/0?probe" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="x-origin-requests" {print $2}'
}

# CPU ticks (user+system) used so far by a process and all its descendants.
cpu_ticks() {
    local pid=$1 total=0 child t
    if [[ -r /proc/$pid/stat ]]; then
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    fi
    for child in $(pgrep -P "$pid" 2>/dev/null || true); do
        total=$((total + $(cpu_ticks "$child")))
    done
    echo "$total"
}

# Requests every URL of the hot set once over one keep-alive connection, so that the run only sees hits.
warm() {
    local base=$1 size=$2 list=$TMP/warm.curl
    : >"$list"
    # A header line in a curl config applies to every URL of it: once, at the top.
    [[ -z $BENCH_AE ]] || printf 'header = "Accept-Encoding: %s"\n' "$BENCH_AE" >>"$list"
    for ((i = 0; i < HOT; i++)); do
        printf 'url = "%s/%s/%s?k=%d"\noutput = "/dev/null"\n' "$base" "$BENCH_PATH" "$size" "$i" >>"$list"
    done
    taskset -c "$LOAD_CPU" curl -ks --max-time 120 -K "$list"
}

# Converts a wrk latency (e.g. 950.00us, 1.23ms, 2.01s) to milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else printf "nan" }'
}

# Bytes wrk read per response (headers included), from its "N requests in T, X read" line.
bytes_per_response() {
    awk '/requests in .* read/ {
        n = $1; x = $(NF - 1)
        u = x; sub(/^[0-9.]+/, "", u); v = x; sub(/[A-Za-z]+$/, "", v)
        m = 1; if (u == "KB") m = 1024; else if (u == "MB") m = 1024 ^ 2; else if (u == "GB") m = 1024 ^ 3; else if (u == "TB") m = 1024 ^ 4
        if (n > 0) printf "%.0f", v * m / n; else print "nan" }' "$1"
}

# Time the hypervisor took from CPUs 0 and 1 ("steal" in /proc/stat), in clock ticks, summed.
steal_ticks() {
    awk -v a="cpu$SERVER_CPU" -v b="cpu$LOAD_CPU" '$1 == a || $1 == b { n += $9 } END { print n + 0 }' /proc/stat
}

# One wrk run; appends "server size run req/s p99_ms cpu% origin_misses errors bytes/response stolen_ms" to
# results.tsv. A run during which the hypervisor took more than STEAL_MAX_MS from the two CPUs is run again (at
# most STEAL_RETRIES times, the same for every server): a 100 ms pause of the whole VM lands in the p99 of
# whichever server was running then, and says nothing about it.
measure() {
    local name=$1 size=$2 run=$3 base=${URL[$1]} out=$TMP/wrk.out
    local before_count after_count t0 t1 c0 c1 seconds rps p99 cpu errors misses secs wire s0 s1 stolen attempt
    local hz
    hz=$(getconf CLK_TCK)
    warm "$base" "$size"
    for ((attempt = 0; ; attempt++)); do
        before_count=$(origin_count)
        c0=$(cpu_ticks "${MAINPID[$name]}")
        s0=$(steal_ticks)
        t0=$(date +%s.%N)
        secs=${DURATION%s}
        BENCH_SIZE=$size BENCH_HOT=$HOT timeout $((secs + 60)) nice -n "$NICE" taskset -c "$LOAD_CPU" \
            wrk -t1 -c"$CONNS" -d"$DURATION" --timeout 5s --latency -s "$HERE/urls.lua" "$base" >"$out" 2>&1 || true
        t1=$(date +%s.%N)
        s1=$(steal_ticks)
        c1=$(cpu_ticks "${MAINPID[$name]}")
        after_count=$(origin_count)
        stolen=$(((s1 - s0) * 1000 / hz))
        if ((stolen <= STEAL_MAX_MS || attempt >= STEAL_RETRIES)); then break; fi
        log "$name size=$size run=$run: the hypervisor took $stolen ms of the CPUs; run again"
    done
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    wire=$(bytes_per_response "$out")
    p99=$(to_ms "$(awk '$1=="99%" {print $2}' "$out")")
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
    cpu=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v s="$seconds" 'BEGIN {printf "%.0f", 100 * c / hz / s}')
    errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' "$out")
    # The ceiling is itself an origin; for the others, requests that reached the origin during the run are misses.
    if [[ $name == ceiling ]]; then misses=0; else misses=$((after_count - before_count - 1)); fi
    if [[ -z $rps ]]; then
        log "$name size=$size run=$run: wrk failed:"; cat "$out" >&2; rps=0; p99=nan
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$run" "$rps" "$p99" "$cpu" "$misses" "${errors:-}" \
        "$wire" "$stolen" >>"$RESULTS/results.tsv"
    log "$(printf '%-14s %7s B run %d: %10.0f req/s  p99 %7.2f ms  server CPU %3s%%  %s B/response  origin requests %s  stolen %s ms %s' \
        "$name" "$size" "$run" "$rps" "$p99" "$cpu" "$wire" "$misses" "$stolen" "${errors:-}")"
}

# Checks that a server answers a warmed URL from its cache (its own hit header, where it has one).
show_hit() {
    local name=$1 size=$2
    local headers
    headers=$(curl -ks -D - -o /dev/null --max-time 5 ${BENCH_AE:+-H "Accept-Encoding: $BENCH_AE"} \
        "${URL[$name]}/$BENCH_PATH/$size?k=0" | tr -d '\r' |
        grep -iE '^(cache-status|x-cache|x-cache-status|age|content-encoding|content-length):' | tr '\n' ' ' || true)
    log "$name: hit check on /$BENCH_PATH/$size?k=0: ${headers:-no cache header (see origin requests)}"
}

# ---- the table -----------------------------------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

col() { # col SERVER SIZE FIELD -> the median of that field over the runs
    awk -F'\t' -v s="$1" -v z="$2" -v f="$3" '$1==s && $2==z {print $f}' "$RESULTS/results.tsv" | median
}

table() {
    local size name rps p99 cpu misses ceiling edge per_cpu wire
    {
        printf '| size | server | req/s (median) | p99 ms (median) | server CPU | req per CPU-second | vs ceiling | edgecache vs it | origin requests during runs | bytes per response |\n'
        printf '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
        for size in $SIZES 1024-tls; do
            ceiling=$(col ceiling "$size" 4)
            edge=$(col edgecache "$size" 4)
            [[ $size == 1024-tls ]] && edge=$(col edgecache-tls "$size" 4)
            for name in $(awk -F'\t' -v z="$size" '$2==z {print $1}' "$RESULTS/results.tsv" | awk '!seen[$0]++'); do
                rps=$(col "$name" "$size" 4)
                p99=$(col "$name" "$size" 5)
                cpu=$(col "$name" "$size" 6)
                wire=$(col "$name" "$size" 9)
                misses=$(awk -F'\t' -v s="$name" -v z="$size" '$1==s && $2==z {m += $7} END {print m + 0}' "$RESULTS/results.tsv")
                per_cpu=$(awk -v r="$rps" -v c="$cpu" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print "-" }')
                printf '| %s | %s | %.0f | %.2f | %s%% | %s | %s | %s | %s | %s |\n' "$size" "$name" "$rps" "$p99" "$cpu" "$per_cpu" \
                    "$(awk -v a="$rps" -v b="$ceiling" 'BEGIN { if (b > 0 && b != "nan") printf "%.0f%%", 100 * a / b; else print "-" }')" \
                    "$(awk -v a="$edge" -v b="$rps" 'BEGIN { if (b > 0 && a != "nan" && a != "") printf "%.2fx", a / b; else print "-" }')" \
                    "$misses" "$wire"
            done
        done
    } >"$RESULTS/table.md"
    cat "$RESULTS/table.md"
}

# ---- main --------------------------------------------------------------------------------------------------------
main() {
    # 64 connections need few descriptors, but HAProxy and nginx check their limits against maxconn at start.
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    install_tools
    build_edgecache
    [[ $TLS == 1 ]] && make_cert
    log "results in $RESULTS; MODE=$MODE DURATION=$DURATION RUNS=$RUNS SIZES='$SIZES' HOT=$HOT CONNS=$CONNS"
    : >"$RESULTS/results.tsv"
    start_origin

    # Every server runs for the whole test (idle ones use no CPU), so runs can be interleaved: run r of every
    # server comes before run r+1 of any, which spreads any drift in background load over all of them.
    local active=() name size run
    for name in $SERVERS; do
        if start_server "$name"; then active+=("$name"); else log "skipping $name"; fi
    done
    for size in $SIZES; do
        for name in "${active[@]}"; do
            warm "${URL[$name]}" "$size"
            [[ $name == ceiling ]] || show_hit "$name" "$size"
        done
        for ((run = 1; run <= RUNS; run++)); do
            for name in "${active[@]}"; do measure "$name" "$size" "$run"; done
        done
    done

    # HTTPS, 1 KiB: edgecache (rustls) against nginx (OpenSSL), same certificate, same wrk.
    if [[ $TLS == 1 ]]; then
        local tls_active=()
        if start_server edgecache-tls; then tls_active+=(edgecache-tls); else log "edgecache could not start with TLS: skipping its HTTPS run"; fi
        if [[ " ${active[*]} " == *" nginx "* ]]; then start_server nginx-tls && tls_active+=(nginx-tls); fi
        for name in "${tls_active[@]}"; do
            warm "${URL[$name]}" 1024
            show_hit "$name" 1024
        done
        for ((run = 1; run <= RUNS; run++)); do
            for name in "${tls_active[@]}"; do
                measure "$name" 1024 "$run"
                # Record the TLS runs under their own size label so the table keeps them apart.
                sed -i '$ s/^\([^\t]*\)\t1024\t/\1\t1024-tls\t/' "$RESULTS/results.tsv"
            done
        done
    fi

    table
    log "raw figures: $RESULTS/results.tsv; table: $RESULTS/table.md"
}

main "$@"
