#!/usr/bin/env python3
"""Writes the Grafana dashboards of edgecache (deploy/grafana/dashboards/*.json) from the panel lists below.

The JSON files are what Grafana loads and what the tests read (edge-tests/dashboards.rs checks that every panel
query returns data from real nodes); this script is the readable source of them. After editing it, run
`python3 deploy/grafana/dashboards.py`; `--check` fails when the JSON files differ from what it would write
(.ci/run runs that).

Every query filters on the dashboard variables `pop` and `node`; `$__rate_interval` is Grafana's own.
"""
import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'pop=~"$pop", node=~"$node"'
RI = "$__rate_interval"


def sel(extra=""):
    """The label selector of every query: the variables, plus `extra` matchers."""
    return "{" + SEL + (", " + extra if extra else "") + "}"


def rate(metric, extra="", by=None):
    inner = f"rate({metric}{sel(extra)}[{RI}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q, metric, by):
    return f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{S}[{RI}])))"


S = sel()
S_HIT = sel('cache_status=~"hit|stale"')
S_CACHEABLE = sel('cache_status!="bypass"')
S_FRESH_HIT = sel('cache_status="hit"')
S_FROM_CACHE = sel('source="cache"')
S_CACHE_OR_UPSTREAM = sel('source=~"cache|coalesced|upstream"')
S_5XX = sel('code=~"5.."')
S_UPSTREAM_ERROR = sel('code=~"5..|0"')

HIT_RATIO = (
    f'sum(rate(edgecache_requests_total{S_HIT}[{RI}]))'
    f' / sum(rate(edgecache_requests_total{S_CACHEABLE}[{RI}]))'
)
BYTE_HIT_RATIO = (
    f'sum(rate(edgecache_served_bytes_total{S_FROM_CACHE}[{RI}]))'
    f' / sum(rate(edgecache_served_bytes_total{S_CACHE_OR_UPSTREAM}[{RI}]))'
)


def target(expr, legend="", ref="A", fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend or "__auto", "refId": ref, "range": True}
    if fmt:
        t["format"] = fmt
    return t


def targets(*pairs):
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(pairs)]


class Layout:
    """Places panels left to right on Grafana's 24-column grid, in rows."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h, self.next_id = [], 0, 0, 0, 1

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1

    def newline(self):
        if self.x:
            self.y += self.row_h
        self.x, self.row_h = 0, 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel["id"] = self.next_id
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)


def base(kind, title, description, tgts, unit):
    return {"type": kind, "title": title, "description": description, "datasource": DS, "targets": tgts,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}}


def stat(title, description, expr, unit, thresholds=None):
    p = base("stat", title, description, [target(expr, title)], unit)
    p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    if thresholds:
        p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": thresholds}
    return p


def series(title, description, tgts, unit, stack=False, minimum=None):
    p = base("timeseries", title, description, tgts, unit)
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 20 if stack else 0, "showPoints": "never",
              "stacking": {"mode": "normal" if stack else "none", "group": "A"}}
    p["fieldConfig"]["defaults"]["custom"] = custom
    if minimum is not None:
        p["fieldConfig"]["defaults"]["min"] = minimum
    p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}}
    return p


def heatmap(title, description, metric, unit):
    expr = f"sum by (le) (increase({metric}_bucket{S}[{RI}]))"
    p = base("heatmap", title, description, [target(expr, "{{le}}", fmt="heatmap")], unit)
    p["options"] = {"calculate": False, "yAxis": {"unit": unit}, "cellGap": 1,
                    "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64}}
    return p


def table(title, description, expr, legend_cols):
    t = target(expr, "", fmt="table")
    t["instant"], t["range"] = True, False
    p = base("table", title, description, [t], "none")
    p["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True, "__name__": True},
                                                            "indexByName": {c: i for i, c in enumerate(legend_cols)}}}]
    return p


def variables():
    ds = {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
          "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []}

    def var(name, label, query):
        return {"type": "query", "name": name, "label": label, "datasource": DS,
                "query": {"query": query, "refId": name}, "definition": query, "refresh": 2, "sort": 1,
                "multi": True, "includeAll": True, "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0}

    return {"list": [ds, var("pop", "PoP", "label_values(edgecache_requests_total, pop)"),
                     var("node", "Node", 'label_values(edgecache_requests_total{pop=~"$pop"}, node)')]}


def dashboard(uid, title, description, layout, tags):
    return {
        "uid": uid, "title": title, "description": description, "tags": ["edgecache"] + tags,
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"}, "timezone": "", "templating": variables(),
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"type": "dashboards", "tags": ["edgecache"], "asDropdown": True, "title": "edgecache",
                   "includeVars": True, "keepTime": True}],
        "panels": layout.panels,
    }


def overview():
    L = Layout()
    L.row("Is the CDN doing its job?")
    L.add(stat("Requests/s", "Client requests answered per second by the selected nodes.",
               rate("edgecache_requests_total"), "reqps"), 4, 4)
    L.add(stat("Hit ratio", "Share of cacheable requests (all but bypass) answered from the cache (hit or stale).",
               HIT_RATIO, "percentunit",
               [{"color": "red", "value": None}, {"color": "orange", "value": 0.5}, {"color": "green", "value": 0.8}]),
          4, 4)
    L.add(stat("Byte hit ratio", "Share of body bytes sent to clients that came from the cache.",
               BYTE_HIT_RATIO, "percentunit"), 4, 4)
    L.add(stat("Bandwidth saved", "Body bytes per second served without a fetch of their own: from the cache, or "
               "from another request's fetch (coalesced). What the upstream did not send.",
               rate("edgecache_served_bytes_total", 'source=~"cache|coalesced"'), "Bps"), 4, 4)
    L.add(stat("Origin requests/s", "Requests per second that reached the origin (from any tier).",
               rate("edgecache_upstream_requests_total", 'upstream="origin"'), "reqps"), 4, 4)
    L.add(stat("5xx ratio", "Share of client answers with a 5xx status (this node's errors and the upstream's).",
               f'(sum(rate(edgecache_requests_total{S_5XX}[{RI}])) or vector(0))'
               f" / sum(rate(edgecache_requests_total{S}[{RI}]))", "percentunit",
               [{"color": "green", "value": None}, {"color": "orange", "value": 0.01}, {"color": "red", "value": 0.05}]),
          4, 4)

    L.row("Traffic")
    L.add(series("Requests by cache status", "How each request was answered: hit, miss, stale, revalidated, "
                 "bypass (not cacheable: POST, ranges, ...), error.",
                 targets((rate("edgecache_requests_total", by="cache_status"), "{{cache_status}}")), "reqps",
                 stack=True), 12, 8)
    L.add(series("Hit ratio by PoP", "Requests answered from the cache over cacheable requests, per PoP, with the "
                 "byte hit ratio beside it.",
                 targets((f'sum by (pop) (rate(edgecache_requests_total{S_HIT}[{RI}]))'
                          f' / sum by (pop) (rate(edgecache_requests_total{S_CACHEABLE}[{RI}]))',
                          "{{pop}} requests"),
                         (f'sum by (pop) (rate(edgecache_served_bytes_total{S_FROM_CACHE}[{RI}]))'
                          f' / sum by (pop) (rate(edgecache_served_bytes_total{S_CACHE_OR_UPSTREAM}'
                          f"[{RI}]))", "{{pop}} bytes")),
                 "percentunit", minimum=0), 12, 8)
    L.add(series("Bandwidth by source", "Body bytes per second sent to clients: from the cache, from another "
                 "request's fetch (coalesced), from this request's own upstream fetch, or written by the node (errors).",
                 targets((rate("edgecache_served_bytes_total", by="source"), "{{source}}")), "Bps", stack=True), 12, 8)
    L.add(series("Requests by method", "Client requests per second by method.",
                 targets((rate("edgecache_requests_total", by="method"), "{{method}}")), "reqps", stack=True), 12, 8)

    L.row("Latency")
    L.add(series("Latency by cache status (p50, p90, p99)", "Time from request head to response head, by cache "
                 "outcome: hits should be sub-millisecond, misses follow the upstream.",
                 targets(*[(quantile(q, "edgecache_request_duration_seconds", "cache_status"),
                            "{{cache_status}} p" + str(int(q * 100))) for q in (0.5, 0.9, 0.99)]), "s"), 16, 9)
    L.add(series("Hit latency p99 by PoP", "The slowest 1% of hits, per PoP: what the cache itself costs.",
                 targets((f"histogram_quantile(0.99, sum by (pop, le) (rate(edgecache_request_duration_seconds_bucket"
                          f'{S_FRESH_HIT}[{RI}])))', "{{pop}}")), "s"), 8, 9)

    L.row("Origin load")
    L.add(series("Upstream requests by upstream and code", "Requests sent upstream per second: to the origin, to "
                 "the parent PoP, to a peer that owns the key; code 0 means no answer (refused, reset, timeout).",
                 targets((rate("edgecache_upstream_requests_total", by="upstream, code"), "{{upstream}} {{code}}")),
                 "reqps", stack=True), 12, 8)
    L.add(series("Upstream latency (p50, p99)", "Time until the upstream's response head, by upstream.",
                 targets((quantile(0.5, "edgecache_upstream_duration_seconds", "upstream"), "{{upstream}} p50"),
                         (quantile(0.99, "edgecache_upstream_duration_seconds", "upstream"), "{{upstream}} p99")),
                 "s"), 12, 8)
    L.add(series("Origin budget: in flight and queued", "Origin requests open (body included) and requests waiting "
                 "for the origin budget ([throttle] origin_*).",
                 targets((f"sum(edgecache_origin_inflight{S})", "in flight"),
                         (f"sum(edgecache_origin_queue_length{S})", "queued")), "short"), 12, 8)
    L.add(series("Coalesced requests/s", "Requests answered from another request's fetch instead of going upstream "
                 "themselves (request collapsing).",
                 targets((rate("edgecache_coalesced_requests_total"), "coalesced")), "reqps"), 12, 8)

    L.row("Errors")
    L.add(series("Client answers that are not 2xx/3xx", "4xx and 5xx answers per second by status code.",
                 targets((rate("edgecache_requests_total", 'code!~"2..|3.."', by="code"), "{{code}}")), "reqps",
                 stack=True), 8, 8)
    L.add(series("Upstream error ratio", "Share of upstream requests answered 5xx or not at all, by upstream.",
                 targets((f'(sum by (upstream) (rate(edgecache_upstream_requests_total{S_UPSTREAM_ERROR}'
                          f"[{RI}])) or sum by (upstream) (rate(edgecache_upstream_requests_total{S}[{RI}])) * 0)"
                          f" / sum by (upstream) (rate(edgecache_upstream_requests_total{S}[{RI}]))",
                          "{{upstream}}")), "percentunit", minimum=0), 8, 8)
    L.add(series("Throttled requests/s", "Requests refused by a throttle: client (429, over throttle.client_rate) "
                 "or origin (budget exhausted: answered stale or 503).",
                 targets((rate("edgecache_throttled_requests_total", by="scope"), "{{scope}}")), "reqps"), 8, 8)
    return dashboard("edgecache-overview", "edgecache / CDN overview",
                     "Is the CDN doing its job: traffic, hit ratio, bandwidth saved, latency, origin load, errors.",
                     L, ["overview"])


def nodes():
    L = Layout()
    L.row("Per PoP")
    L.add(series("Requests/s by PoP", "Client requests per second per PoP.",
                 targets((rate("edgecache_requests_total", by="pop"), "{{pop}}")), "reqps", stack=True), 8, 8)
    L.add(series("Upstream requests/s by PoP", "What each PoP asks of its upstream (parent, peers, origin).",
                 targets((rate("edgecache_upstream_requests_total", by="pop, upstream"), "{{pop}} → {{upstream}}")),
                 "reqps", stack=True), 8, 8)
    L.add(series("Cache memory by PoP", "Bytes held by the caches of each PoP (headers, bodies, overhead).",
                 targets((f"sum by (pop) (edgecache_cache_bytes{S})", "{{pop}}")), "bytes", stack=True), 8, 8)

    L.row("Per node")
    L.add(series("Requests/s by node", "Client requests per second per node: is the load spread evenly?",
                 targets((rate("edgecache_requests_total", by="node"), "{{node}}")), "reqps"), 8, 8)
    L.add(series("Hit ratio by node", "Requests answered from the cache over cacheable requests, per node.",
                 targets((f'sum by (node) (rate(edgecache_requests_total{S_HIT}[{RI}]))'
                          f' / sum by (node) (rate(edgecache_requests_total{S_CACHEABLE}[{RI}]))',
                          "{{node}}")), "percentunit", minimum=0), 8, 8)
    L.add(series("Bandwidth by node", "Body bytes per second sent to clients, per node.",
                 targets((rate("edgecache_served_bytes_total", by="node"), "{{node}}")), "Bps"), 8, 8)
    L.add(series("p99 latency by node", "The slowest 1% of answers per node, hits and misses together.",
                 targets((quantile(0.99, "edgecache_request_duration_seconds", "node"), "{{node}}")), "s"), 8, 8)
    L.add(series("Open connections", "Client connections open, per node and listener (http, https).",
                 targets((f"sum by (node, listener) (edgecache_open_connections{S})", "{{node}} {{listener}}")),
                 "short"), 8, 8)
    L.add(series("TLS handshake errors/s", "TLS handshakes that failed or timed out, per node: bad clients, "
                 "scanners, or a certificate problem.",
                 targets((rate("edgecache_tls_handshake_errors_total", by="node"), "{{node}}")), "short"), 8, 8)

    L.row("Cache contents")
    L.add(series("Cache fill", "Bytes held by each node's cache over its limit (cache.memory): a full cache "
                 "evicts (reason=size) to admit new objects.",
                 targets((f"sum by (node) (edgecache_cache_bytes{S}) / sum by (node) (edgecache_cache_capacity_bytes{S})",
                          "{{node}}")), "percentunit", minimum=0), 8, 8)
    L.add(series("Cached objects", "Objects held by each node's cache.",
                 targets((f"sum by (node) (edgecache_cache_objects{S})", "{{node}}")), "short"), 8, 8)
    L.add(series("Evictions/s by reason", "Objects leaving the cache: size (memory full), expired, replaced (a "
                 "newer copy), explicit (purge, invalidation).",
                 targets((rate("edgecache_cache_evictions_total", by="reason"), "{{reason}}")), "short",
                 stack=True), 8, 8)
    L.add(heatmap("Stored object sizes", "Body size of the objects stored, over time: what the cache is made of.",
                  "edgecache_object_size_bytes", "bytes"), 12, 8)
    L.add(series("Freshness left at hit (p10, p50)", "Seconds of freshness a hit still had: small values mean "
                 "objects expire soon after they are fetched (short TTLs cost origin requests).",
                 targets((quantile(0.1, "edgecache_hit_ttl_seconds", "pop"), "{{pop}} p10"),
                         (quantile(0.5, "edgecache_hit_ttl_seconds", "pop"), "{{pop}} p50")), "s"), 12, 8)

    L.row("Waiting")
    L.add(series("Origin budget wait (p50, p99)", "How long origin requests waited for the origin budget.",
                 targets((quantile(0.5, "edgecache_origin_queue_wait_seconds", "node"), "{{node}} p50"),
                         (quantile(0.99, "edgecache_origin_queue_wait_seconds", "node"), "{{node}} p99")), "s"),
          8, 8)
    L.add(series("Coalesced requests/s by node", "Requests that waited on another request's fetch, per node.",
                 targets((rate("edgecache_coalesced_requests_total", by="node"), "{{node}}")), "reqps"), 8, 8)
    L.add(series("Client addresses with a bucket", "Addresses tracked by the client throttle after its last sweep.",
                 targets((f"sum by (node) (edgecache_throttle_client_addresses{S})", "{{node}}")), "short"), 8, 8)

    L.row("Compression")
    L.add(series("Compression: bytes in and out", "Bytes fed to the encoders (in) and produced (out), by encoding.",
                 targets((rate("edgecache_compressed_bytes_total", by="encoding, direction"),
                          "{{encoding}} {{direction}}")), "Bps"), 12, 8)
    L.add(series("Compression ratio", "Bytes out over bytes in, by encoding: lower is better.",
                 targets((rate("edgecache_compressed_bytes_total", 'direction="out"', by="encoding") + " / "
                          + rate("edgecache_compressed_bytes_total", 'direction="in"', by="encoding"),
                          "{{encoding}}")), "percentunit", minimum=0), 12, 8)

    L.row("Fleet")
    L.add(table("Nodes", "Every node: its PoP, version, and when it started.",
                f"max by (pop, node, version) (edgecache_build_info{S})"
                f" * on (pop, node) group_left max by (pop, node) (edgecache_start_time_seconds{S})",
                ["pop", "node", "version", "Value"]), 12, 8)
    L.add(series("Uptime", "Seconds since each node started: a drop is a restart.",
                 targets((f"time() - max by (node) (edgecache_start_time_seconds{S})", "{{node}}")), "s"), 12, 8)
    return dashboard("edgecache-nodes", "edgecache / nodes and PoPs",
                     "Each PoP and each node: load spread, hit ratio, latency, connections, cache contents, waits.",
                     L, ["nodes"])


def cluster():
    L = Layout()
    L.row("Peers and parents")
    L.add(series("Peer health", "1 when a node sees a peer (same PoP or parent PoP) as up, 0 when down.",
                 targets((f"max by (node, peer) (edgecache_peer_up{S})", "{{node}} → {{peer}}")), "short",
                 minimum=0), 12, 8)
    L.add(stat("Peers seen down", "How many (node, peer) pairs see the peer as down right now.",
               f"sum(1 - edgecache_peer_up{S})", "short",
               [{"color": "green", "value": None}, {"color": "red", "value": 1}]), 4, 8)
    L.add(series("Requests by upstream", "Where this tier's misses go: the owner peer, the parent PoP, or the origin.",
                 targets((rate("edgecache_upstream_requests_total", by="upstream"), "{{upstream}}")), "reqps",
                 stack=True), 8, 8)
    L.add(series("Upstream latency by upstream (p50, p99)", "Time to the response head from a peer, the parent or "
                 "the origin: a peer hop for a hit should cost well under a millisecond.",
                 targets((quantile(0.5, "edgecache_upstream_duration_seconds", "upstream"), "{{upstream}} p50"),
                         (quantile(0.99, "edgecache_upstream_duration_seconds", "upstream"), "{{upstream}} p99")),
                 "s"), 12, 8)
    L.add(series("Upstream failures by upstream", "Upstream requests answered 5xx or not at all (code 0), by "
                 "upstream: a failing peer or parent shows here first.",
                 targets((f'(sum by (upstream, code) (rate(edgecache_upstream_requests_total{S_UPSTREAM_ERROR}'
                          f"[{RI}])) or sum by (upstream) (rate(edgecache_upstream_requests_total{S}[{RI}])) * 0)",
                          "{{upstream}} {{code}}")), "reqps"), 12, 8)

    L.row("Purge")
    L.add(series("Purges/s by kind", "Purges applied, by kind (url, prefix, tag, host, everything) and soft or hard.",
                 targets((rate("edgecache_purges_total", by="kind, soft"), "{{kind}} soft={{soft}}")), "short",
                 stack=True), 8, 8)
    L.add(series("Purge latency (p50, p99)", "From POST /purge to the answer: every node of every PoP applied it.",
                 targets((quantile(0.5, "edgecache_purge_duration_seconds", "pop"), "{{pop}} p50"),
                         (quantile(0.99, "edgecache_purge_duration_seconds", "pop"), "{{pop}} p99")), "s"), 8, 8)
    L.add(series("Purges not confirmed", "Purges answered 202 (some node did not confirm in time), over the range.",
                 targets((f"sum by (node) (increase(edgecache_purge_unconfirmed_total{S}[{RI}]))", "{{node}}")),
                 "short", minimum=0), 8, 8)
    L.add(series("Explicit removals/s", "Objects removed by purges and invalidations (evictions with "
                 "reason=explicit), per node.",
                 targets((rate("edgecache_cache_evictions_total", 'reason="explicit"', by="node"), "{{node}}")),
                 "short"), 12, 8)
    L.add(series("Purge log and tag index", "Purges held in each node's purge log (what a returning node catches up "
                 "from) and (tag, object) pairs in its tag index: both must stay bounded.",
                 targets((f"sum by (node) (edgecache_purge_log_entries{S})", "{{node}} log"),
                         (f"sum by (node) (edgecache_purge_tag_index_entries{S})", "{{node}} tag index")), "short"),
          12, 8)
    L.add(series("Hit ratio around purges", "Hit ratio per PoP: a purge of everything shows as a dip that refills.",
                 targets((f'sum by (pop) (rate(edgecache_requests_total{S_HIT}[{RI}]))'
                          f' / sum by (pop) (rate(edgecache_requests_total{S_CACHEABLE}[{RI}]))',
                          "{{pop}}")), "percentunit", minimum=0), 12, 8)
    return dashboard("edgecache-cluster", "edgecache / purge and cluster",
                     "Peer and parent health, where misses go, purges and how fast every node confirms them.",
                     L, ["cluster", "purge"])


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, board in (("overview", overview()), ("nodes", nodes()), ("cluster", cluster())):
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        path = OUT / f"edgecache-{name}.json"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run python3 deploy/grafana/dashboards.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
