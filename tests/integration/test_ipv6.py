#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""IPv6: WSD_LISTEN=[::1]:0, echo with a real client and a raw socket, peer logged as [::1]:PORT.
Skipped when ::1 is not configured."""

from wsdtest import (OP_BINARY, OP_CLOSE, Shared, Skip, bytes_of, case, check, close_payload,
                     have_ipv6_loopback, local_port, recv_within, run, ws_connect)

HAVE = have_ipv6_loopback()
srv = Shared(listen="[::1]:0")


def need():
    if not HAVE:
        raise Skip("::1 is not configured on this machine")
    return srv()


@case("WSD_LISTEN=[::1]:0: the listening line shows ws://[::1]:PORT/")
def listening_line():
    w = need()
    check(w.host == "::1" and w.port > 0, f"listening on {w.host!r} port {w.port}")
    check(f"ws://[::1]:{w.port}/" in w.log(), f"log: {w.log_tail()}")


@case("websockets over [::1]: text and 65536-byte binary echoed; open line peer=[::1]:PORT")
async def echo_v6():
    w = need()
    async with ws_connect(w, "/v6") as ws:
        for m in ("hello over IPv6", bytes_of(65536)):
            await ws.send(m)
            check(await recv_within(ws) == m, "echo differs")
        port = local_port(ws)
        o = w.open_line(port)
        check(o.get("peer") == f"[::1]:{port}", f"open line peer {o.get('peer')!r}, want [::1]:{port}")
    check(ws.close_code == 1000, f"close code {ws.close_code}")


@case("raw socket over [::1]: handshake, binary echo, close 1000")
def raw_v6():
    w = need()
    with w.raw() as c:
        c.handshake(host="[::1]")
        c.send_frame(OP_BINARY, b"\x00\x01\x02")
        op, data, _ = c.recv_message()
        check((op, data) == (OP_BINARY, b"\x00\x01\x02"), f"got {(op, data)!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("an IPv4 client cannot reach a server listening on [::1]")
def v4_not_served():
    import socket
    w = need()
    try:
        socket.create_connection(("127.0.0.1", w.port), 1).close()
    except OSError:
        return
    raise Skip(f"something else listens on 127.0.0.1:{w.port}")  # a coincidence, not a wsd bug


@case("teardown: pool back to WSD_POOL_MIN, no zombie, fd counts as at start, clean SIGTERM exit")
def teardown():
    need()
    srv.finish()


if __name__ == "__main__":
    run()
