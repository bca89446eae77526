#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Memory per connection with permessage-deflate on and off. For each scenario a fresh wsd
holds N connections; the figure is the PSS summed over every wsd process (supervisor,
acceptor, workers; /proc/PID/smaps_rollup) with the N connections open, minus the same sum
before they opened, divided by N. Scenarios: idle after the handshake, and after one message
each way (1 KiB, 256 KiB; text that compresses about 3:1), with deflate off and on. A bench
figure, not a test: prints a table and one JSON line.

Usage: [WSD_BIN=build/wsd] bench/deflate_mem.py [-n 1000]"""

import argparse
import asyncio
import base64
import json
import os
import random
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "integration"))
from wsdtest import Wsd  # noqa: E402  (starts wsd, finds its port, checks it leaves cleanly)

TAIL = b"\x00\x00\xff\xff"
SCENARIOS = [  # (label, deflate, message bytes: 0 = none)
    ("deflate off, idle after the handshake", False, 0),
    ("deflate on, agreed, idle", True, 0),
    ("deflate off, one 1 KiB message each way", False, 1024),
    ("deflate on, one compressed 1 KiB message each way", True, 1024),
    ("deflate off, one 256 KiB message each way", False, 256 << 10),
    ("deflate on, one compressed 256 KiB message each way", True, 256 << 10),
]


def text(n, seed=1):
    words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta", b"eta", b"theta",
             b"%d" % seed, b"iota", b"kappa", b"lambda", b"mu"]
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < n:
        out += rnd.choice(words) + b" " + str(rnd.randrange(100000)).encode() + b" "
    return bytes(out[:n])


def client_frame(opcode, payload, rsv1=False):
    """A masked client frame; the zero mask keeps the payload as it is (legal, and cheap)."""
    b0 = 0x80 | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


async def read_frame(r):
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await r.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await r.readexactly(8))[0]
    return b0, await r.readexactly(n)


async def open_conn(port, deflate):
    r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    w.write((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{ext}"
             f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    agreed = b"permessage-deflate" in head
    assert agreed == deflate, head
    return r, w


async def exchange(conn, msg, deflate):
    """One message each way: send msg (compressed when agreed), read and check its echo."""
    r, w = conn
    if deflate:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        z = c.compress(msg) + c.flush(zlib.Z_SYNC_FLUSH)
        w.write(client_frame(0x2, z[:-4], rsv1=True))
    else:
        w.write(client_frame(0x2, msg))
    await w.drain()
    b0, payload = await read_frame(r)
    if b0 & 0x40:
        d = zlib.decompressobj(-15)
        payload = d.decompress(payload + TAIL)
    assert payload == msg, (len(payload), len(msg))
    return len(payload)


def wsd_pids(sup):
    """The supervisor and its children (acceptor, workers)."""
    out = [sup]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
                if int(st[st.rindex(")") + 2:].split()[1]) == sup:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def pss_kib(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def settle(sup, want_procs, timeout=30):
    """Wait until wsd has want_procs processes and its PSS stops moving."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        pids = wsd_pids(sup)
        if len(pids) >= want_procs:
            now = pss_kib(pids)
            if last is not None and abs(now - last) <= max(64, now // 1000):
                return now, len(pids)
            last = now
        time.sleep(0.5)
    pids = wsd_pids(sup)
    return pss_kib(pids), len(pids)


async def scenario(n, deflate, size):
    pool = 8
    w = Wsd(env={"WSD_LOG_LEVEL": "notice", "WSD_POOL_MIN": pool, "WSD_MAX_CONNS": n + 100,
                 "WSD_MAX_CONNS_PER_IP": 0, "WSD_ABUSE_LIMIT": 0, "WSD_PING_INTERVAL_MS": 0,
                 "WSD_DEFLATE": "on" if deflate else "off"}).start()
    conns = []
    try:
        before, _ = settle(w.pid, 2 + pool)
        for i in range(0, n, 50):
            conns += await asyncio.gather(*[open_conn(w.port, deflate)
                                            for _ in range(min(50, n - i))])
        if size:
            msg = text(size)
            for i in range(0, n, 50):
                await asyncio.gather(*[exchange(c, msg, deflate) for c in conns[i:i + 50]])
        after, procs = settle(w.pid, 2 + pool + n)
    except BaseException:
        w.kill()
        raise
    for _, c in conns:
        c.close()
    w.stop()
    return (after - before) / n, procs


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    args = ap.parse_args()
    rows = []
    print(f"wsd PSS per connection, N={args.n} (summed over every wsd process, minus the "
          f"sum before the connections opened)")
    print(f"{'scenario':<55} {'KiB/conn':>9} {'procs':>6}")
    for label, deflate, size in SCENARIOS:
        per, procs = await scenario(args.n, deflate, size)
        rows.append({"scenario": label, "deflate": deflate, "message_bytes": size,
                     "pss_kib_per_conn": round(per, 1), "processes": procs})
        print(f"{label:<55} {per:>9.1f} {procs:>6}", flush=True)
    print(json.dumps({"bench": "deflate_mem", "n": args.n, "rows": rows}))


if __name__ == "__main__":
    asyncio.run(main())
