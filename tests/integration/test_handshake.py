#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The opening handshake over raw sockets: every refusal status, each followed by the server
closing TCP; good requests in unusual shapes; the handshake timeout and WSD_MAX_CONNS.

The shared instance runs with WSD_ABUSE_LIMIT=0: this file sends dozens of refused handshakes
from 127.0.0.1 on purpose, which the abuse detector would otherwise (rightly) ban."""

import socket
import time

from wsdtest import (OP_CLOSE, OP_TEXT, Closed, Fail, Shared, Wsd, accept_of, case, check,
                     close_payload, echo_once, expect_status, frame, run, upgrade_request,
                     wait_until)

srv = Shared(env={"WSD_ABUSE_LIMIT": "0"})


# ---- accepted


@case("101 with the RFC 6455 4.2.2 example key: Sec-WebSocket-Accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
def rfc_example_key():
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    check(accept_of(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "test helper accept_of is wrong")
    with srv().raw() as c:
        c.send(upgrade_request("/chat", key=key))
        r = c.read_http()
        check(r.status == 101, f"want 101, got {r!r}")
        check(r.headers.get("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", f"{r.headers}")
        check(r.headers.get("upgrade", "").lower() == "websocket", f"Upgrade header: {r.headers}")
        check("upgrade" in r.headers.get("connection", "").lower(), f"Connection header: {r.headers}")
        check("sec-websocket-extensions" not in r.headers, f"no extension was offered: {r.headers}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("101 with header names and tokens in any case, Connection: keep-alive, Upgrade (Firefox)")
def header_case_insensitive():
    key = "x3JJHMbDL1EzLkh9GBhXDw=="
    req = ("GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nUPGRADE: WebSocket\r\n"
           "connection: keep-alive, Upgrade\r\nsec-websocket-key: " + key + "\r\n"
           "SEC-WEBSOCKET-VERSION: 13\r\nUser-Agent: wsdtest\r\n\r\n").encode()
    with srv().raw() as c:
        c.send(req)
        r = c.read_http()
        check(r.status == 101, f"want 101, got {r!r}")
        check(r.headers.get("sec-websocket-accept") == accept_of(key), f"{r.headers}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("101 when the request arrives one byte per write")
def byte_by_byte():
    key = "AQIDBAUGBwgJCgsMDQ4PEA=="
    req = upgrade_request("/slow", key=key)
    with srv().raw() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(req)):
            c.send(req[i:i + 1])
            time.sleep(0.002)
        r = c.read_http()
        check(r.status == 101, f"want 101, got {r!r}")
        check(r.headers.get("sec-websocket-accept") == accept_of(key), f"{r.headers}")
        c.send_frame(OP_TEXT, "after a slow handshake")
        op, data, _ = c.recv_message()
        check(data == b"after a slow handshake", f"echo {data!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("101 and echo when the first frame comes in the same write as the request (pipelining)")
def pipelined_first_frame():
    with srv().raw() as c:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        c.send(upgrade_request("/pipe", key=key) + frame(OP_TEXT, "pipelined")
               + frame(OP_TEXT, "second") + frame(OP_CLOSE, close_payload(1000)))
        r = c.read_http()
        check(r.status == 101, f"want 101, got {r!r}")
        op, data, _ = c.recv_message()
        check((op, data) == (OP_TEXT, b"pipelined"), f"first echo {(op, data)!r}")
        op, data, _ = c.recv_message()
        check((op, data) == (OP_TEXT, b"second"), f"second echo {(op, data)!r}")
        c.expect_close(1000, reply=False)


@case("101 with a request just under WSD_MAX_HEADER_BYTES (default 8192)")
def near_header_limit():
    base = upgrade_request("/", extra=[("X-Pad", "")])
    pad = 8192 - len(base) - 64
    with srv().raw() as c:
        c.handshake(extra=[("X-Pad", "p" * pad)])
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


# ---- refused


@case("400 for a malformed request line")
def malformed_request_line():
    expect_status(srv(), b"GARBAGE\r\n\r\n", 400)


@case("400 for binary junk")
def malformed_junk():
    expect_status(srv(), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(40) + b"\r\n\r\n", 400)


@case("400 for a header line without a colon")
def malformed_header_line():
    req = upgrade_request().replace(b"Upgrade: websocket\r\n", b"Upgrade websocket\r\n")
    expect_status(srv(), req, 400)


@case("405 for POST")
def post_405():
    expect_status(srv(), upgrade_request(method="POST"), 405)


@case("426 with Sec-WebSocket-Version: 13 for Sec-WebSocket-Version: 8")
def version_8_426():
    expect_status(srv(), upgrade_request(version="8"), 426, ("Sec-WebSocket-Version", "13"))


@case("426 with Sec-WebSocket-Version: 13 when Sec-WebSocket-Version is missing")
def version_missing_426():
    expect_status(srv(), upgrade_request(version=None), 426, ("Sec-WebSocket-Version", "13"))


@case("426 for a plain GET (no Upgrade header)")
def plain_get_426():
    expect_status(srv(), b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wsdtest\r\n\r\n", 426)


@case("426 for a GET with Connection: Upgrade but no Upgrade header")
def no_upgrade_header_426():
    expect_status(srv(), upgrade_request(omit=("upgrade",)), 426)


@case("400 when Sec-WebSocket-Key is missing")
def key_missing_400():
    expect_status(srv(), upgrade_request(omit=("sec-websocket-key",)), 400)


@case("400 when Sec-WebSocket-Key decodes to 15 bytes")
def key_15_bytes_400():
    import base64
    expect_status(srv(), upgrade_request(key=base64.b64encode(bytes(15)).decode()), 400)


@case("400 when Sec-WebSocket-Key decodes to 17 bytes")
def key_17_bytes_400():
    import base64
    expect_status(srv(), upgrade_request(key=base64.b64encode(bytes(17)).decode()), 400)


@case("400 when Sec-WebSocket-Key is not base64")
def key_not_base64_400():
    expect_status(srv(), upgrade_request(key="!!!!not base64!!!!!!!!=="), 400)


@case("431 for a request over WSD_MAX_HEADER_BYTES (default 8192)")
def header_too_large_431():
    expect_status(srv(), upgrade_request(extra=[("X-Pad", "p" * 9000)]), 431)


@case("431 for headers that never end, past WSD_MAX_HEADER_BYTES")
def header_endless_431():
    line = b"X-Endless: " + b"e" * 100 + b"\r\n"
    expect_status(srv(), [b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"] + [line] * (12000 // len(line)),
                  431)


@case("431 with WSD_MAX_HEADER_BYTES=2048 for 3000 bytes; 101 for 1500")
def header_limit_configured():
    with Wsd(env={"WSD_MAX_HEADER_BYTES": "2048", "WSD_ABUSE_LIMIT": "0"}) as w:
        expect_status(w, upgrade_request(extra=[("X-Pad", "p" * 2800)]), 431)
        with w.raw() as c:
            c.handshake(extra=[("X-Pad", "p" * 1300)])
            c.send_frame(OP_CLOSE, close_payload(1000))
            c.expect_close(1000, reply=False)
        w.check_clean()


@case("503 with Retry-After beyond WSD_MAX_CONNS=2 live connections; accepted again after one closes")
def max_conns_503():
    with Wsd(env={"WSD_MAX_CONNS": "2", "WSD_ABUSE_LIMIT": "0"}) as w:
        a, b = w.raw(), w.raw()
        try:
            a.handshake()
            b.handshake()
            w.worker_of(a.local_port)
            w.worker_of(b.local_port)
            expect_status(w, upgrade_request(), 503, ("Retry-After", None))
            a.send_frame(OP_CLOSE, close_payload(1000))
            a.expect_close(1000, reply=False)
            # the slot frees once the supervisor sees the worker go: allow it a moment
            def third():
                with w.raw() as c:
                    c.send(upgrade_request())
                    r = c.read_http()
                    if r.status == 503:
                        c.expect_eof()
                        return None
                    check(r.status == 101, f"want 101 or 503, got {r!r}")
                    c.send_frame(OP_CLOSE, close_payload(1000))
                    c.expect_close(1000, reply=False)
                    return True
            wait_until(third, 5, "a new connection to be accepted after one of 2 closed", interval=0.1)
            b.send_frame(OP_CLOSE, close_payload(1000))
            b.expect_close(1000, reply=False)
        finally:
            a.close()
            b.close()
        w.check_clean()


def _timeout_case(send):
    ms = 1000
    with Wsd(env={"WSD_HANDSHAKE_TIMEOUT_MS": str(ms), "WSD_ABUSE_LIMIT": "0"}) as w:
        with w.raw(timeout=10) as c:
            t0 = time.monotonic()
            if send:
                c.send(send)
            limit = ms / 1000 + 2
            try:
                r = c.read_http(timeout=limit)
            except Closed:
                r = None  # a plain close is accepted too
            except socket.timeout:
                raise Fail(f"no 408 and no close within {limit:.1f} s") from None
            if r is not None:
                check(r.status == 408, f"want 408 or a plain close, got {r!r}")
                c.expect_eof(max(0.1, limit - (time.monotonic() - t0)))
            took = time.monotonic() - t0
            check(took <= ms / 1000 + 2, f"the connection ended after {took:.2f} s, want <= {ms / 1000 + 2}")
            check(took >= ms / 1000 * 0.5, f"the connection ended after {took:.2f} s, before the "
                  f"{ms} ms handshake timeout")
        w.check_clean()


@case("408 (or close) within WSD_HANDSHAKE_TIMEOUT_MS=1000 + 2 s for a partial request")
def handshake_timeout_partial():
    _timeout_case(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")


@case("408 (or close) within WSD_HANDSHAKE_TIMEOUT_MS=1000 + 2 s for a client that sends nothing")
def handshake_timeout_silent():
    _timeout_case(b"")


@case("the server still echoes after all the refusals")
def still_serving():
    echo_once(srv(), "still here")


@case("teardown: pool back to WSD_POOL_MIN, no zombie, fd counts as at start, clean SIGTERM exit")
def teardown():
    srv.finish()


if __name__ == "__main__":
    run()
