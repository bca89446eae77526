#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seed corpora of the fuzz targets into DIR/<target>/: the requests, frames and
DEFLATE payloads of the unit tests (tests/unit/test_http_upgrade.c, test_ws_reader.c,
test_deflate.c), each with the few leading control bytes its target reads first.
Usage: make_seeds.py DIR"""

import hashlib
import os
import sys
import zlib

GOOD = (b"Host: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
REQUESTS = [
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + GOOD + b"\r\n\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
    b"GET / HTTP/1.1\r\n" + GOOD + b"Sec-WebSocket-Extensions: permessage-deflate; "
    b"client_max_window_bits\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + GOOD + b"Sec-WebSocket-Extensions: x-foo, permessage-deflate; "
    b"server_no_context_takeover; server_max_window_bits=\"10\"\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + GOOD + b"\r\n",
    b"GET / HTTP/1.0\r\n" + GOOD + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\tfolded\r\n\r\n",
    b"GET / HTTP/1.1\nHost: h\n\n",
    b"permessage-deflate; server_max_window_bits=8, permessage-deflate; foo, permessage-deflate",
]


def mask(payload, key=b"\x37\xfa\x21\x3d"):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(op, payload, fin=True, rsv=0):
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv << 4 | op
    if n < 126:
        h = bytes([b0, 0x80 | n])
    elif n < 65536:
        h = bytes([b0, 0xFE]) + n.to_bytes(2, "big")
    else:
        h = bytes([b0, 0xFF]) + n.to_bytes(8, "big")
    return h + b"\x37\xfa\x21\x3d" + mask(payload)


def deflate(data, wbits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


HELLO = [b"\xf2\x48\xcd\xc9\xc9\x07\x00", b"\xf2\x00\x11\x00\x00",
         b"\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00", b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00"]
STREAMS = [
    frame(1, b"Hello"),
    frame(1, b"Hel", fin=False) + frame(9, b"ping") + frame(0, b"lo"),
    frame(2, bytes(range(256))) + frame(8, b"\x03\xe8bye"),
    frame(1, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()[:5], fin=False) +
    frame(0, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()[5:]),
    frame(1, b"\xed\xa0\x80"),
    frame(10, b""), frame(8, b"\x03"), frame(3, b"x"), frame(1, b"x", rsv=2),
    b"".join(frame(1, h, rsv=4) for h in HELLO),
    frame(1, deflate(b"Hello " * 200)[:10], fin=False, rsv=4) +
    frame(0, deflate(b"Hello " * 200)[10:]),
    frame(2, deflate(bytes(100000)), rsv=4),
    frame(1, deflate(b"ok \xc0\xaf"), rsv=4),
]


def write(d, name, blob):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()[:16] + "-" + name), "wb") as f:
        f.write(blob)


def main(out):
    for i, r in enumerate(REQUESTS):
        write(os.path.join(out, "fuzz_http_upgrade"), "req%d" % i, b"\x00\x10" + r)
    for i, s in enumerate(STREAMS):
        for cfg in (b"\x00\x00\x00", b"\x01\x00\x05", b"\x03\x09\x03"):
            write(os.path.join(out, "fuzz_ws_reader"), "s%d" % i, cfg + b"\x05\x01\x07" * (
                cfg[2] % 16 > 0) + s)
    for i, z in enumerate(HELLO + [deflate(b"abc" * 1000), deflate(os.urandom(300), 9),
                                   b"\xff\xff\xff\xff"]):
        write(os.path.join(out, "fuzz_inflate"), "z%d" % i, b"\x00\x1f" + z)
        write(os.path.join(out, "fuzz_inflate"), "z%dk" % i, b"\x47\x00" + z)


if __name__ == "__main__":
    main(sys.argv[1])
