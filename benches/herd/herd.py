#!/usr/bin/env python3
"""A thundering herd: N clients, one connection each, all ask for the same URL at the same moment.

Every client connects first; once all are connected, every request is written at once (HTTP/1.1,
`Connection: close`) and each client reads its answer to the end. Prints one line of JSON: how many answers
by status, how many distinct bodies, and latency percentiles (from the common start to each client's last
byte), in milliseconds.

Usage: herd.py HOST PORT PATH N
"""

import asyncio
import json
import sys
import time


def decode_chunked(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2:]
    return out


async def one(host, port, path, go, results):
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    await go.wait()
    started = go.started
    writer.write(request)
    await writer.drain()
    data = await reader.read(-1)
    took = time.monotonic() - started
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(b":") for l in lines[1:])}
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = decode_chunked(body)
    results.append((status, body, took))


async def main(host, port, path, n):
    go = asyncio.Event()
    results = []
    tasks = [asyncio.create_task(one(host, port, path, go, results)) for _ in range(n)]
    await asyncio.sleep(0.5)  # let every client connect
    go.started = time.monotonic()
    go.set()
    await asyncio.gather(*tasks)
    statuses = {}
    for status, _, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    took = sorted(r[2] * 1000 for r in results)

    def pct(p):
        return round(took[min(len(took) - 1, int(p / 100 * len(took)))], 1)

    print(json.dumps({
        "clients": n,
        "statuses": statuses,
        "distinct_bodies": len({r[1] for r in results}),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": round(took[-1], 1),
    }))


if __name__ == "__main__":
    host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    asyncio.run(main(host, port, path, n))
