#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Kill latency: with N connections open to a fresh wsd, end them one after another through
the control socket and time each from the request to the moment its client has the close
frame. Prints one human line and one JSON line (p50/p99/max in ms).

Usage: bench/kill_latency.py [--wsd build/wsd] [-n 1000]"""

import argparse
import asyncio
import base64
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def open_conn(port):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    w.write((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return r, w, w.get_extra_info("sockname")[1]


async def control(sock_path, line):
    r, w = await asyncio.open_unix_connection(sock_path)
    w.write(line.encode())
    out = await r.read()
    w.close()
    return out.decode()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wsd", default="build/wsd")
    ap.add_argument("-n", type=int, default=1000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="wsd-killbench-")
    sock = os.path.join(tmp, "ctl.sock")
    env = dict(os.environ, WSD_LISTEN="127.0.0.1:0", WSD_LOG_LEVEL="info", WSD_POOL_MIN="64",
               WSD_CONTROL_SOCKET=sock, WSD_MAX_CONNS=str(args.n + 100))
    log = open(os.path.join(tmp, "log"), "w+")
    wsd = subprocess.Popen([args.wsd], env=env, stderr=log, stdout=log)
    try:
        port = None
        for _ in range(500):
            log.seek(0)
            m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", log.read())
            if m:
                port = int(m.group(1))
                break
            await asyncio.sleep(0.01)
        conns = []
        for i in range(args.n):
            conns.append(await open_conn(port))
        # conn ids from the log: peer port -> id
        ids = {}
        while len(ids) < args.n:
            log.seek(0)
            ids = {int(p): int(c) for c, p in re.findall(r"open conn=(\d+) pid=\d+ peer=127\.0\.0\.1:(\d+) ", log.read())}
            await asyncio.sleep(0.05)
        lat = []
        for r, w, lport in conns:
            t0 = time.perf_counter()
            reply = await control(sock, f"kill {ids[lport]} 1008 0 \n")
            assert reply.startswith("OK"), reply
            b = await asyncio.wait_for(r.readexactly(2), 10)
            assert b[0] == 0x88, b  # FIN + close
            lat.append((time.perf_counter() - t0) * 1000)
            w.close()
        res = {"bench": "kill", "n": args.n, "p50_ms": round(statistics.median(lat), 3),
               "p99_ms": round(quantile(lat, 0.99), 3), "max_ms": round(max(lat), 3),
               "kernel": os.uname().release}
        print(f"kill latency over {args.n} open connections: p50 {res['p50_ms']} ms, "
              f"p99 {res['p99_ms']} ms, max {res['max_ms']} ms")
        print(json.dumps(res))
    finally:
        wsd.terminate()
        wsd.wait(30)


asyncio.run(main())
