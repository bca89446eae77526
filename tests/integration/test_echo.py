#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Echo and the closing handshake: python3-websockets for what a real client does, raw sockets
for fragments split anywhere, interleaved control frames and every protocol violation."""

import asyncio
import os
import signal

from wsdtest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Shared, Wsd,
                     bytes_of, case, check, close_payload, expect_server_close, frame,
                     local_port, recv_within, run, text_of, ws_connect)

srv = Shared()

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]


# ---- echo with a real client


def _echo_case(kind, n):
    async def body():
        w = srv()
        msg = text_of(n) if kind == "text" else bytes_of(n)
        async with ws_connect(w, f"/echo/{kind}/{n}") as ws:
            await ws.send(msg)
            got = await recv_within(ws, 10)
            check(type(got) is type(msg), f"sent {type(msg).__name__}, got {type(got).__name__} back")
            check(len(got) == len(msg), f"sent {len(msg)}, got {len(got)} back")
            check(got == msg, "the echo differs from what was sent")
        check(ws.close_code == 1000, f"close code {ws.close_code}, want 1000")

    return body


for _kind in ("text", "binary"):
    for _n in SIZES:
        case(f"websockets: {_kind} message of {_n} bytes echoed whole, same type")(_echo_case(_kind, _n))


@case("websockets: 200 messages of mixed types and sizes echoed in order")
async def many_in_order():
    w = srv()
    msgs = [text_of(i * 37 % 3000) if i % 2 else bytes_of(i * 53 % 70000, i) for i in range(200)]
    async with ws_connect(w, "/many") as ws:
        async def sender():
            for m in msgs:
                await ws.send(m)
        task = asyncio.ensure_future(sender())
        for i, m in enumerate(msgs):
            got = await recv_within(ws, 10)
            check(got == m, f"message {i}: got {type(got).__name__} of {len(got)}, want "
                            f"{type(m).__name__} of {len(m)}")
        await task


@case("websockets: a text message sent as 4 fragments comes back as one message")
async def fragmented_text():
    async with ws_connect(srv(), "/frag") as ws:
        await ws.send(["Hel", "lo, ", "wörld ", "😀"])
        got = await recv_within(ws)
        check(got == "Hello, wörld 😀", f"got {got!r}")


@case("websockets: a binary message sent as fragments from an async iterator comes back whole")
async def fragmented_binary_async():
    parts = [bytes_of(1000, i) for i in range(5)] + [b""] + [bytes_of(70000, 9)]

    async def gen():
        for p in parts:
            yield p
            await asyncio.sleep(0.01)

    async with ws_connect(srv(), "/frag") as ws:
        await ws.send(gen())
        got = await recv_within(ws)
        check(got == b"".join(parts), f"got {len(got)} bytes, want {len(b''.join(parts))}")


def _expect_extension(ws, want):
    """The server answered exactly want (None: no extension) and websockets runs it."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    ext = ws.response_headers.get("Sec-WebSocket-Extensions")
    check(ext == want, f"Sec-WebSocket-Extensions answered {ext!r}, want {want!r}")
    kinds = [type(e) for e in ws.extensions]
    check(kinds == ([PerMessageDeflate] if want else []), f"extensions in use: {kinds}")


# websockets' default offer is "permessage-deflate; client_max_window_bits": wsd leaves the
# client's window as it is, so the answer has no parameters.
PMD = "permessage-deflate"


@case("websockets: default compression offer: permessage-deflate negotiated, echo works")
async def deflate_offer_echo():
    async with ws_connect(srv(), "/deflate", compression="deflate") as ws:
        _expect_extension(ws, PMD)
        for msg in ("compressible " * 1000, bytes_of(5000), "", b"", text_of(1 << 20),
                    bytes(1 << 20)):
            await ws.send(msg)
            got = await recv_within(ws, 10)
            check(got == msg, f"echo of {type(msg).__name__} of {len(msg)} differs "
                              f"({type(got).__name__} of {len(got)})")


@case("websockets: no compression offered: no extension answered, echo works")
async def deflate_not_offered():
    async with ws_connect(srv(), "/plain", compression=None) as ws:
        _expect_extension(ws, None)
        await ws.send("compressible " * 1000)
        check(await recv_within(ws) == "compressible " * 1000, "echo differs")


@case("websockets: deflate with every parameter offered: each answered, promises kept")
async def deflate_all_params():
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

    offer = ClientPerMessageDeflateFactory(server_no_context_takeover=True,
                                           client_no_context_takeover=True,
                                           server_max_window_bits=10, client_max_window_bits=12)
    async with ws_connect(srv(), "/params", extensions=[offer]) as ws:
        _expect_extension(ws, PMD + "; server_no_context_takeover; client_no_context_takeover; "
                          "server_max_window_bits=10")
        # websockets inflates with a fresh 1 KiB window per message now: the same text twice
        # proves the server neither looks further back nor into the previous message.
        msg = text_of(50000)
        for _ in range(3):
            await ws.send(msg)
            check(await recv_within(ws, 10) == msg, "echo differs")


def _deflate_echo_case(kind, n):
    async def body():
        msg = text_of(n) if kind == "text" else bytes_of(n)
        async with ws_connect(srv(), f"/deflate/{kind}/{n}", compression="deflate") as ws:
            _expect_extension(ws, PMD)
            await ws.send(msg)
            got = await recv_within(ws, 10)
            check(type(got) is type(msg) and got == msg,
                  f"sent {type(msg).__name__} of {len(msg)}, got {type(got).__name__} of {len(got)}")

    return body


for _kind in ("text", "binary"):
    for _n in (0, 126, 65536, 1 << 20):
        case(f"websockets+deflate: {_kind} message of {_n} bytes echoed")(_deflate_echo_case(_kind, _n))


@case("websockets+deflate: a message inflating past WSD_MAX_MESSAGE=1000 -> close 1009")
async def deflate_bomb_1009():
    with Wsd(env={"WSD_MAX_MESSAGE": "1000"}) as w:
        async with ws_connect(w, "/bomb", compression="deflate") as ws:
            _expect_extension(ws, PMD)
            await ws.send(bytes(100000))  # ~100 bytes on the wire
            e = await expect_server_close(ws)
            check(e.rcvd is not None and e.rcvd.code == 1009, f"want close 1009, got {e!r}")
        await asyncio.sleep(0)
        w.check_clean()


@case("websockets: WSD_DEFLATE=off declines the permessage-deflate offer, echo works")
async def deflate_off():
    with Wsd(env={"WSD_DEFLATE": "off"}) as w:
        async with ws_connect(w, "/nodeflate", compression="deflate") as ws:
            _expect_extension(ws, None)
            await ws.send("x" * 3000)
            check(await recv_within(ws) == "x" * 3000, "echo differs")
        w.check_clean()


@case("websockets: ping with empty, 1-byte and 125-byte payloads gets a pong")
async def ping_pong():
    async with ws_connect(srv(), "/ping") as ws:
        for payload in (b"", b"x", bytes_of(125)):
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, 5)
        await ws.send("after pings")
        check(await recv_within(ws) == "after pings", "echo after pings")


# ---- raw frames


@case("raw: ping -> pong with the same payload; unsolicited pong ignored")
def raw_ping():
    with srv().raw() as c:
        c.handshake()
        for payload in (b"", b"p", bytes_of(125, 3)):
            c.send_frame(OP_PING, payload)
            f = c.recv_frame()
            check(f.opcode == OP_PONG and f.fin, f"want a pong, got {f!r}")
            check(f.payload == payload, f"pong payload {f.payload!r}, want {payload!r}")
        c.send_frame(OP_PONG, b"unsolicited")
        c.send_frame(OP_TEXT, "still there")
        op, data, pongs = c.recv_message()
        check((op, data, pongs) == (OP_TEXT, b"still there", []), f"got {(op, data, pongs)!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("raw: fragmented text with a ping between fragments -> pong, then the whole message")
def raw_fragments_interleaved_ping():
    with srv().raw() as c:
        c.handshake()
        c.send_frame(OP_TEXT, "abc", fin=False)
        c.send_frame(OP_PING, "p1")
        c.send_frame(OP_CONT, "def", fin=False)
        c.send_frame(OP_CONT, "ghi", fin=True)
        op, data, pongs = c.recv_message()
        check(pongs == [b"p1"], f"pongs before the message {pongs!r}, want [b'p1']")
        check((op, data) == (OP_TEXT, b"abcdefghi"), f"got {(op, data)!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("raw: a UTF-8 character split across fragments is valid")
def raw_utf8_split_across_fragments():
    with srv().raw() as c:
        c.handshake()
        euro = "€".encode()  # e2 82 ac
        c.send_frame(OP_TEXT, b"x" + euro[:1], fin=False)
        c.send_frame(OP_CONT, euro[1:2], fin=False)
        c.send_frame(OP_CONT, euro[2:] + b"y", fin=True)
        op, data, _ = c.recv_message()
        check((op, data) == (OP_TEXT, "x€y".encode()), f"got {(op, data)!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("raw: binary message in 300 one-byte fragments, and empty fragments, echoed whole")
def raw_many_fragments():
    with srv().raw() as c:
        c.handshake()
        data = bytes_of(300, 5)
        out = frame(OP_BINARY, data[:1], fin=False)
        for i in range(1, 300):
            out += frame(OP_CONT, b"", fin=False) + frame(OP_CONT, data[i:i + 1], fin=False)
        out += frame(OP_CONT, b"", fin=True)
        c.send(out)
        op, got, _ = c.recv_message()
        check((op, got) == (OP_BINARY, data), f"got op {op} {len(got)} bytes")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("raw: frames split at every byte boundary across writes are parsed")
def raw_split_writes():
    import socket
    import time
    with srv().raw() as c:
        c.handshake()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = frame(OP_TEXT, "split me") + frame(OP_BINARY, bytes_of(300, 1))
        for i in range(len(data)):
            c.send(data[i:i + 1])
            if i < 20 or i % 50 == 0:
                time.sleep(0.002)
        op, got, _ = c.recv_message()
        check((op, got) == (OP_TEXT, b"split me"), f"got {(op, got)!r}")
        op, got, _ = c.recv_message()
        check((op, got) == (OP_BINARY, bytes_of(300, 1)), f"got op {op}, {len(got)} bytes")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


@case("raw: small and large messages and a ping in one write come back in order, pong in place")
def raw_one_write_mixed():
    # The answers to one read leave together (small frames gathered, a large one written with
    # what was gathered before it): order and content must not change.
    with srv().raw() as c:
        c.handshake()
        big, mid = bytes_of(100000, 7), text_of(20000)
        msgs = [(OP_TEXT, b"a")] + [(OP_BINARY, bytes_of(i, i)) for i in range(1, 60)] + \
            [(OP_BINARY, big), (OP_TEXT, b"b"), (OP_TEXT, mid.encode())]
        out = frame(OP_TEXT, b"a") + frame(OP_PING, b"p")
        for op, data in msgs[1:]:
            out += frame(op, data)
        c.send(out)
        for i, (op, data) in enumerate(msgs):
            got_op, got, pongs = c.recv_message()
            check(pongs == ([b"p"] if i == 1 else []), f"message {i}: pongs before it {pongs!r}")
            check((got_op, got) == (op, data), f"message {i}: got op {got_op}, {len(got)} bytes; "
                                               f"want op {op}, {len(data)} bytes")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


# ---- closing handshake


def _close_code_case(code):
    async def body():
        w = srv()
        async with ws_connect(w, f"/close/{code}") as ws:
            port = local_port(ws)
            await ws.send("bye")
            check(await recv_within(ws) == "bye", "echo before close")
            await asyncio.wait_for(ws.close(code=code, reason="done"), 5)
        check(ws.close_code == code, f"the server answered close {code} with {ws.close_code}")
        line = w.close_line(port)
        check(line.get("code") == str(code) and line.get("by") == "client",
              f"close log line {line}, want code={code} by=client")

    return body


for _code in (1000, 3000, 4999):
    case(f"websockets: client close {_code} is answered with close {_code}, TCP ends")(_close_code_case(_code))


@case("raw: a close without a code is answered with an empty close (or 1000), TCP ends")
def raw_close_no_code():
    with srv().raw() as c:
        c.handshake()
        c.send_frame(OP_CLOSE, b"")
        c.expect_close((None, 1000), reply=False)


@case("raw: close 1000 with a reason -> close 1000, TCP ends within 3 s")
def raw_close_with_reason():
    with srv().raw() as c:
        c.handshake()
        c.send_frame(OP_CLOSE, close_payload(1000, "normal, with a reason: ünïcödé"))
        c.expect_close(1000, reply=False)


@case("raw: the client's close is answered and TCP closed at once, without waiting for its FIN")
def raw_close_client_keeps_socket():
    # WSD_CLOSE_TIMEOUT_MS is long: a worker waiting for the client's FIN would log nothing here
    with Wsd(env={"WSD_CLOSE_TIMEOUT_MS": "60000"}) as w, w.raw() as c:
        c.handshake()
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)  # its close frame, then a clean EOF (no reset)
        line = w.close_line(c.local_port, timeout=3)  # while the client still holds its socket
        check(line.get("code") == "1000" and line.get("by") == "client", f"close line {line}")


@case("websockets: SIGTERM to the connection's worker -> close 1001")
async def worker_sigterm_1001():
    w = srv()
    async with ws_connect(w, "/term") as ws:
        await ws.send("x")
        await recv_within(ws)
        pid = w.worker_of(local_port(ws))
        os.kill(pid, signal.SIGTERM)
        e = await expect_server_close(ws)
        check(e.rcvd is not None and e.rcvd.code == 1001, f"want close 1001 from the server, got {e!r}")
    line = w.close_line(local_port(ws))
    check(line.get("code") == "1001" and line.get("by") == "server", f"close line {line}")


# ---- protocol violations


def _violation(name, frames, code, pre=None, env=None):
    def body():
        def go(w):
            with w.raw() as c:
                c.handshake()
                if pre:
                    for f in pre:
                        c.send(f)
                    c.recv_message()
                try:
                    c.send(b"".join(frames))
                except OSError:
                    pass  # a server that answered already may have reset the connection
                c.expect_close(code)
        if env:
            with Wsd(env=env) as w:
                go(w)
                w.check_clean()
        else:
            go(srv())

    case(f"raw: {name} -> close {code}, TCP ends")(body)


_violation("unmasked client frame", [frame(OP_TEXT, "unmasked", mask=False)], 1002)
_violation("reserved data opcode 0x3", [frame(0x3, "x")], 1002)
_violation("reserved control opcode 0xB", [frame(0xB, "x")], 1002)
_violation("RSV1 set without a negotiated extension", [frame(OP_TEXT, "x", rsv=4)], 1002)
_violation("fragmented ping (FIN=0 control frame)", [frame(OP_PING, "x", fin=False)], 1002)
_violation("ping with a 126-byte payload", [frame(OP_PING, bytes(126))], 1002)
_violation("continuation frame with no message started", [frame(OP_CONT, "x")], 1002)
_violation("new text frame inside a fragmented message",
           [frame(OP_TEXT, "a", fin=False), frame(OP_TEXT, "b")], 1002)
_violation("close with a 1-byte payload", [frame(OP_CLOSE, b"\x03")], 1002)
_violation("close with code 1005 (may not be sent)", [frame(OP_CLOSE, close_payload(1005))], 1002)
_violation("close with code 999", [frame(OP_CLOSE, close_payload(999))], 1002)
_violation("invalid UTF-8 in a text message", [frame(OP_TEXT, b"ok \xff\xfe not")], 1007)
_violation("overlong UTF-8 encoding (C0 AF)", [frame(OP_TEXT, b"\xc0\xaf")], 1007)
_violation("UTF-16 surrogate encoded in UTF-8 (ED A0 80)", [frame(OP_TEXT, b"\xed\xa0\x80")], 1007)
_violation("invalid UTF-8 in the second fragment",
           [frame(OP_TEXT, "valid ", fin=False), frame(OP_CONT, b"\x80\x80", fin=True)], 1007)
_violation("text message ending inside a UTF-8 character", [frame(OP_TEXT, "€".encode()[:2])], 1007)
_violation("invalid UTF-8 in a close reason", [frame(OP_CLOSE, close_payload(1000, b"\xff"))], 1007)
_violation("message one byte over WSD_MAX_MESSAGE=1000", [frame(OP_BINARY, bytes(1001))], 1009,
           env={"WSD_MAX_MESSAGE": "1000"})
_violation("fragments adding up past WSD_MAX_MESSAGE=1000",
           [frame(OP_TEXT, "a" * 600, fin=False), frame(OP_CONT, "b" * 600, fin=True)], 1009,
           env={"WSD_MAX_MESSAGE": "1000"})
_violation("a frame header declaring 2^40 bytes (no body sent)",
           [frame(OP_BINARY, b"", length=1 << 40)], 1009, env={"WSD_MAX_MESSAGE": "1000"})
_violation("default limit: a 1 MiB + 1 byte message", [frame(OP_BINARY, bytes((1 << 20) + 1))], 1009)


@case("raw: a message of exactly WSD_MAX_MESSAGE=1000 bytes is echoed")
def at_max_message():
    with Wsd(env={"WSD_MAX_MESSAGE": "1000"}) as w:
        with w.raw() as c:
            c.handshake()
            c.send_frame(OP_TEXT, "a" * 500, fin=False)
            c.send_frame(OP_CONT, "b" * 500)
            op, got, _ = c.recv_message()
            check((op, got) == (OP_TEXT, b"a" * 500 + b"b" * 500), f"got op {op}, {len(got)} bytes")
            c.send_frame(OP_CLOSE, close_payload(1000))
            c.expect_close(1000, reply=False)
        w.check_clean()


@case("teardown: pool back to WSD_POOL_MIN, no zombie, fd counts as at start, clean SIGTERM exit")
def teardown():
    srv.finish()


if __name__ == "__main__":
    run()
