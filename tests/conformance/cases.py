# SPDX-License-Identifier: MIT
"""The case catalogue: every case group of the Autobahn|Testsuite (1-7 framing, pings, RSV,
opcodes, fragmentation, UTF-8, close; 9 limits at this suite's sizes; 10 auto-fragmentation;
12-13 permessage-deflate), written anew for wsd, plus wsd's own limits and deflate cases.
Each case is (id, one-line description, function(env)); a function returns on a pass and
raises wsclient.Fail with what it saw otherwise."""

import os
import random
import struct
import time
import zlib

from wsclient import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, RSV1, RSV2,
                      RSV3, Client, Fail, close_payload, frame)

CASES = []


def case(cid, desc):
    def add(fn):
        CASES.append((cid, desc, fn))
        return fn
    return add


def add_case(cid, desc, fn):
    CASES.append((cid, desc, fn))


def echo_case(opcode, payload, chop=None, frag=None, ext=None, compress=False):
    """Send one message (whole, chopped into TCP pieces, or fragmented), expect its echo."""
    def run(env):
        with Client(env.port, extensions=ext) as c:
            if frag:
                c.send_message(opcode, payload, compress=compress, frag=frag)
            else:
                data = payload.encode() if isinstance(payload, str) else payload
                rsv = 0
                if compress:
                    data, rsv = c.deflate.compress(data), RSV1
                c.send(frame(opcode, data, rsv=rsv), chop=chop)
            c.expect_echo(opcode, payload)
            c.finish()
    return run


def fail_case(frames, code, before=(), chop=None, ext=None, port_attr="port"):
    """Send frames (bytes, pipelined), expect the events in before, then close with code."""
    def run(env):
        with Client(getattr(env, port_attr), extensions=ext) as c:
            # A close among the frames is ours: the client must not send a second one after
            # the server's answer (RFC 6455 5.5.1), which would meet a closed socket and a RST.
            c.sent_close = any(f[0] & 0x0F == OP_CLOSE for f in frames)
            c.send(b"".join(frames), chop=chop)
            for kind, value in before:
                c.expect(kind, value)
            c.expect_close(code)
    return run


# ---- 1 framing: every payload length boundary ----

LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536, 65537]
for i, n in enumerate(LENGTHS):
    add_case("1.1.%d" % (i + 1), "text message, %d bytes" % n, echo_case(OP_TEXT, "*" * n))
add_case("1.1.%d" % (len(LENGTHS) + 1), "text message, 65536 bytes, sent in 997-byte chops",
         echo_case(OP_TEXT, "*" * 65536, chop=997))
add_case("1.1.%d" % (len(LENGTHS) + 2), "text message, 125 bytes, header split byte by byte",
         echo_case(OP_TEXT, "*" * 125, chop=1))
for i, n in enumerate(LENGTHS):
    add_case("1.2.%d" % (i + 1), "binary message, %d bytes" % n,
             echo_case(OP_BINARY, bytes([0xFE]) * n))
add_case("1.2.%d" % (len(LENGTHS) + 1), "binary message, 65536 bytes, sent in 997-byte chops",
         echo_case(OP_BINARY, b"\xfe" * 65536, chop=997))


@case("1.3.1", "unmasked client frame fails with 1002")
def _(env):
    fail_case([frame(OP_TEXT, "hi", mask=False)], 1002)(env)


@case("1.3.2", "non-minimal 16-bit length (5 in 126 form) fails with 1002")
def _(env):
    fail_case([bytes([0x81, 0x80 | 126, 0, 5]) + b"\0\0\0\0" + b"hello"], 1002)(env)


@case("1.3.3", "non-minimal 64-bit length (200 in 127 form) fails with 1002")
def _(env):
    fail_case([bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 200) + b"\0\0\0\0" + b"x" * 200],
              1002)(env)


@case("1.3.4", "64-bit length with the top bit set fails with 1002")
def _(env):
    fail_case([bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + b"\0\0\0\0"], 1002)(env)


# ---- 2 pings and pongs ----

def ping_case(payloads, chop=None, separate=False):
    def run(env):
        with Client(env.port) as c:
            if separate:
                for p in payloads:
                    c.send_frame(OP_PING, p)
                    time.sleep(0.001)
            else:
                c.send(b"".join(frame(OP_PING, p) for p in payloads), chop=chop)
            for p in payloads:
                c.expect("pong", p)
            c.finish()
    return run


add_case("2.1", "ping without payload gets an empty pong", ping_case([b""]))
add_case("2.2", "ping with a text payload gets it back", ping_case([b"Hello, world!"]))
add_case("2.3", "ping with a binary payload gets it back", ping_case([b"\x00\xff\xfe\xfd\xfc"]))
add_case("2.4", "ping with 125 bytes gets them back", ping_case([b"\xfe" * 125]))
add_case("2.5", "ping with 126 bytes fails with 1002",
         fail_case([frame(OP_PING, b"\xfe" * 126)], 1002))
add_case("2.6", "ping with 125 bytes sent byte by byte", ping_case([b"\xfe" * 125], chop=1))


def unanswered_case(data, pongs=()):
    """Send data; only the pongs listed come back before the barrier's own pong."""
    def run(env):
        with Client(env.port) as c:
            c.send(data)
            for p in pongs:
                c.expect("pong", p)
            c.barrier()
            c.finish()
    return run


add_case("2.7", "unsolicited empty pong: no answer", unanswered_case(frame(OP_PONG)))
add_case("2.8", "unsolicited pong with payload: no answer",
         unanswered_case(frame(OP_PONG, b"unsolicited pong payload")))
add_case("2.9", "unsolicited pong, then ping: only the pong to the ping",
         unanswered_case(frame(OP_PONG, b"unsolicited") + frame(OP_PING, b"ping payload"),
                         [b"ping payload"]))
add_case("2.10", "10 pings pipelined get 10 pongs in order",
         ping_case([b"payload-%d" % i for i in range(10)]))
add_case("2.11", "10 pings sent one at a time get 10 pongs in order",
         ping_case([b"payload-%d" % i for i in range(10)], separate=True))
add_case("2.12", "pong with 126 bytes fails with 1002",
         fail_case([frame(OP_PONG, b"\xfe" * 126)], 1002))
add_case("2.13", "unsolicited pong with 125 bytes: no answer",
         unanswered_case(frame(OP_PONG, b"\xfe" * 125)))


# ---- 3 reserved bits (no extension negotiated) ----

def rsv_case(rsv, opcode=OP_TEXT, payload=b"Hello", echo_first=False, then_ping=False,
             chop=None):
    def run(env):
        frames, before = [], []
        if echo_first:
            frames.append(frame(OP_TEXT, "Hello"))
            before.append(("text", b"Hello"))
        frames.append(frame(opcode, payload, rsv=rsv))
        if then_ping:
            frames.append(frame(OP_PING, b"never answered"))
        fail_case(frames, 1002, before=before, chop=chop)(env)
    return run


add_case("3.1", "text with RSV3 fails with 1002", rsv_case(RSV3))
add_case("3.2", "echo, then text with RSV2, then ping: echo, 1002, no pong",
         rsv_case(RSV2, echo_first=True, then_ping=True))
add_case("3.3", "same as 3.2 with RSV2|RSV3, byte by byte",
         rsv_case(RSV2 | RSV3, echo_first=True, then_ping=True, chop=1))
add_case("3.4", "echo, text with RSV1 (no extension), ping: echo, 1002",
         rsv_case(RSV1, echo_first=True, then_ping=True))
add_case("3.5", "binary with RSV1|RSV3 fails with 1002",
         rsv_case(RSV1 | RSV3, opcode=OP_BINARY, payload=b"\xff" * 8))
add_case("3.6", "ping with RSV1|RSV2 fails with 1002",
         rsv_case(RSV1 | RSV2, opcode=OP_PING, payload=b"ping"))
add_case("3.7", "close with all RSV bits fails with 1002",
         rsv_case(7, opcode=OP_CLOSE, payload=close_payload(1000)))
add_case("3.8", "continuation with RSV1 (no extension) fails with 1002",
         fail_case([frame(OP_TEXT, "He", fin=False), frame(OP_CONT, "llo", rsv=RSV1)], 1002))


# ---- 4 opcodes ----

for i, op in enumerate([3, 4, 5, 6, 7]):
    add_case("4.1.%d" % (i + 1), "reserved data opcode %d after an echo fails with 1002" % op,
             fail_case([frame(OP_TEXT, "Hello"), frame(op, b"\x01\x02" * i),
                        frame(OP_PING, b"x")], 1002, before=[("text", b"Hello")]))
for i, op in enumerate([11, 12, 13, 14, 15]):
    add_case("4.2.%d" % (i + 1), "reserved control opcode %d after an echo fails with 1002" % op,
             fail_case([frame(OP_TEXT, "Hello"), frame(op, b"\x01" * i),
                        frame(OP_PING, b"x")], 1002, before=[("text", b"Hello")]))


# ---- 5 fragmentation ----

add_case("5.1", "ping in 2 fragments fails with 1002",
         fail_case([frame(OP_PING, "frag1", fin=False), frame(OP_CONT, "frag2")], 1002))
add_case("5.2", "pong in 2 fragments fails with 1002",
         fail_case([frame(OP_PONG, "frag1", fin=False), frame(OP_CONT, "frag2")], 1002))
add_case("5.3", "text in 2 fragments is echoed whole", echo_case(OP_TEXT, "fragment1fragment2",
                                                                 frag=9))
add_case("5.4", "text in 2 fragments, byte by byte",
         lambda env: _frag_ping(env, [b"fragment1", b"fragment2"], [], chop=1))
add_case("5.5", "binary in 100 one-byte fragments", echo_case(OP_BINARY, bytes(range(100)),
                                                              frag=1))


def _frag_ping(env, pieces, ping_after, chop=None, opcode=OP_TEXT, separate=False):
    """Fragments of one message, with a ping after fragment i for each i in ping_after."""
    with Client(env.port) as c:
        out = []
        for i, p in enumerate(pieces):
            out.append(frame(opcode if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1))
            if i in ping_after:
                out.append(frame(OP_PING, b"ping-%d" % i))
        if separate:
            for f in out:
                c.send(f)
                time.sleep(0.001)
        else:
            c.send(b"".join(out), chop=chop)
        for i in ping_after:
            c.expect("pong", b"ping-%d" % i)
        c.expect_echo(opcode, b"".join(pieces))
        c.finish()


add_case("5.6", "text in 2 fragments with a ping between: pong, then echo",
         lambda env: _frag_ping(env, [b"fragment1", b"fragment2"], [0]))
add_case("5.7", "same as 5.6, frames sent one at a time",
         lambda env: _frag_ping(env, [b"fragment1", b"fragment2"], [0], separate=True))
add_case("5.8", "same as 5.6, byte by byte",
         lambda env: _frag_ping(env, [b"fragment1", b"fragment2"], [0], chop=1))
add_case("5.9", "continuation (FIN) without a start fails with 1002",
         fail_case([frame(OP_CONT, "non-continuation payload"), frame(OP_TEXT, "Hello")], 1002))
add_case("5.10", "same as 5.9, byte by byte",
         fail_case([frame(OP_CONT, "non-continuation payload"), frame(OP_TEXT, "Hello")], 1002,
                   chop=1))
add_case("5.11", "continuation (no FIN) without a start fails with 1002",
         fail_case([frame(OP_CONT, "fragment1", fin=False), frame(OP_CONT, "fragment2")], 1002))
add_case("5.12", "same as 5.11, byte by byte",
         fail_case([frame(OP_CONT, "fragment1", fin=False), frame(OP_CONT, "fragment2")], 1002,
                   chop=1))
add_case("5.13", "whole message, then a stray continuation: echo, then 1002",
         fail_case([frame(OP_TEXT, "Hello"), frame(OP_CONT, "stray")], 1002,
                   before=[("text", b"Hello")]))
add_case("5.14", "a new text message inside a fragmented one fails with 1002",
         fail_case([frame(OP_TEXT, "fragment1", fin=False), frame(OP_TEXT, "fragment2")], 1002))
add_case("5.15", "a new binary message inside a fragmented text fails with 1002",
         fail_case([frame(OP_TEXT, "f1", fin=False), frame(OP_BINARY, b"f2", fin=False),
                    frame(OP_CONT, "f3")], 1002))
add_case("5.16", "two fragmented messages, then a continuation: 2 echoes, 1002",
         fail_case([frame(OP_TEXT, "a", fin=False), frame(OP_CONT, "b"),
                    frame(OP_TEXT, "c", fin=False), frame(OP_CONT, "d"),
                    frame(OP_CONT, "e")], 1002, before=[("text", b"ab"), ("text", b"cd")]))
add_case("5.17", "text in 5 fragments with pings after 1 and 3: 2 pongs, echo",
         lambda env: _frag_ping(env, [b"f1", b"f2", b"f3", b"f4", b"f5"], [0, 2]))
add_case("5.18", "same as 5.17, byte by byte",
         lambda env: _frag_ping(env, [b"f1", b"f2", b"f3", b"f4", b"f5"], [0, 2], chop=1))
add_case("5.19", "fragments of length 0 around a payload",
         lambda env: _frag_ping(env, [b"", b"", b"middle", b"", b""], [1]))
add_case("5.20", "binary in 3 fragments with a close between: close wins, no echo",
         fail_case([frame(OP_BINARY, b"a", fin=False), frame(OP_CLOSE, close_payload(1000)),
                    frame(OP_CONT, b"b")], 1000))


# ---- 6 UTF-8 ----

VALID = [
    ("empty", b""),
    ("ASCII", b"Hello, world"),
    ("Greek kosme", "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()),
    ("mixed 2-4 byte", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!! \U0001f600".encode()),
    ("first 1-byte U+0000", b"\x00"),
    ("first 2-byte U+0080", b"\xc2\x80"),
    ("first 3-byte U+0800", b"\xe0\xa0\x80"),
    ("first 4-byte U+10000", b"\xf0\x90\x80\x80"),
    ("last 1-byte U+007F", b"\x7f"),
    ("last 2-byte U+07FF", b"\xdf\xbf"),
    ("last 3-byte U+FFFF (noncharacter)", b"\xef\xbf\xbf"),
    ("last 4-byte U+10FFFF", b"\xf4\x8f\xbf\xbf"),
    ("U+D7FF", b"\xed\x9f\xbf"),
    ("U+E000", b"\xee\x80\x80"),
    ("U+FFFD", b"\xef\xbf\xbd"),
    ("U+FFFE noncharacter", b"\xef\xbf\xbe"),
    ("U+FDD0 noncharacter", b"\xef\xb7\x90"),
    ("U+1FFFF noncharacter", b"\xf0\x9f\xbf\xbf"),
]

INVALID = [
    ("lone continuation 0x80", b"\x80"),
    ("lone continuation 0xbf", b"\xbf"),
    ("2 continuations", b"\x80\xbf"),
    ("3 continuations", b"\x80\xbf\x80"),
    ("7 continuations", b"\x80\xbf\x80\xbf\x80\xbf\x80"),
    ("2-byte start then space", b"\xc2 "),
    ("3-byte start then space", b"\xe0 "),
    ("4-byte start then space", b"\xf0 "),
    ("5-byte start 0xf8", b"\xf8\x88\x80\x80\x80"),
    ("6-byte start 0xfc", b"\xfc\x84\x80\x80\x80\x80"),
    ("2-byte missing last", b"\xdf"),
    ("3-byte missing last", b"\xef\xbf"),
    ("4-byte missing last", b"\xf4\x8f\xbf"),
    ("truncated sequences concatenated", b"\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf"),
    ("impossible 0xfe", b"\xfe"),
    ("impossible 0xff", b"\xff"),
    ("impossible fe fe ff ff", b"\xfe\xfe\xff\xff"),
    ("overlong / (2 bytes)", b"\xc0\xaf"),
    ("overlong / (3 bytes)", b"\xe0\x80\xaf"),
    ("overlong / (4 bytes)", b"\xf0\x80\x80\xaf"),
    ("max overlong 2-byte", b"\xc1\xbf"),
    ("max overlong 3-byte", b"\xe0\x9f\xbf"),
    ("max overlong 4-byte", b"\xf0\x8f\xbf\xbf"),
    ("overlong NUL 2-byte", b"\xc0\x80"),
    ("overlong NUL 3-byte", b"\xe0\x80\x80"),
    ("surrogate U+D800", b"\xed\xa0\x80"),
    ("surrogate U+DB7F", b"\xed\xad\xbf"),
    ("surrogate U+DB80", b"\xed\xae\x80"),
    ("surrogate U+DBFF", b"\xed\xaf\xbf"),
    ("surrogate U+DC00", b"\xed\xb0\x80"),
    ("surrogate U+DF80", b"\xed\xbe\x80"),
    ("surrogate U+DFFF", b"\xed\xbf\xbf"),
    ("surrogate pair D800 DC00", b"\xed\xa0\x80\xed\xb0\x80"),
    ("surrogate pair DBFF DFFF", b"\xed\xaf\xbf\xed\xbf\xbf"),
    ("above U+10FFFF (f4 90)", b"\xf4\x90\x80\x80"),
    ("start 0xf5", b"\xf5\x80\x80\x80"),
    ("kosme with an invalid byte", "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80edited"),
]


def utf8_case(data, valid, frag=None):
    def run(env):
        with Client(env.port) as c:
            c.send_message(OP_TEXT, data, frag=frag)
            if valid:
                c.expect_echo(OP_TEXT, data)
                c.finish()
            else:
                c.expect_close(1007)
    return run


for i, (name, data) in enumerate(VALID):
    add_case("6.1.%d" % (i + 1), "valid UTF-8, %s: echoed" % name, utf8_case(data, True))
    add_case("6.2.%d" % (i + 1), "valid UTF-8, %s, 1-byte fragments: echoed" % name,
             utf8_case(data, True, frag=1))
for i, (name, data) in enumerate(INVALID):
    add_case("6.3.%d" % (i + 1), "invalid UTF-8, %s: 1007" % name, utf8_case(data, False))
    add_case("6.4.%d" % (i + 1), "invalid UTF-8, %s, 1-byte fragments: 1007" % name,
             utf8_case(data, False, frag=1))
for i in range(0x80, 0x100):
    add_case("6.5.%d" % i, "byte 0x%02x alone: 1007" % i, utf8_case(bytes([i]), False))

KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5-h\u00e9llo \U0001f600!".encode()
_BOUNDS = {0}
_t = 0
for _ch in KOSME.decode():
    _t += len(_ch.encode())
    _BOUNDS.add(_t)
for i in range(1, len(KOSME) + 1):
    add_case("6.6.%d" % i, "prefix of %d bytes of a mixed text: %s" %
             (i, "echoed" if i in _BOUNDS else "1007 (ends inside a character)"),
             utf8_case(KOSME[:i], i in _BOUNDS))
for i in range(len(KOSME) + 1):
    add_case("6.7.%d" % (i + 1), "0xff inserted at byte %d of a valid text: 1007" % i,
             utf8_case(KOSME[:i] + b"\xff" + KOSME[i:], False))
for i in range(1, len(KOSME)):
    add_case("6.8.%d" % i, "valid text split into 2 fragments at byte %d: echoed" % i,
             lambda env, i=i: _split(env, KOSME, [i], True))
_BAD = KOSME[:9] + b"\xed\xa0\x80" + KOSME[9:]
for i in range(1, len(_BAD)):
    add_case("6.9.%d" % i, "text with a surrogate split at byte %d: 1007" % i,
             lambda env, i=i: _split(env, _BAD, [i], False))


def _split(env, data, cuts, valid):
    pieces, prev = [], 0
    for cut in cuts + [len(data)]:
        pieces.append(data[prev:cut])
        prev = cut
    with Client(env.port) as c:
        c.send(b"".join(frame(OP_TEXT if k == 0 else OP_CONT, p, fin=k == len(pieces) - 1)
                        for k, p in enumerate(pieces)))
        if valid:
            c.expect_echo(OP_TEXT, data)
            c.finish()
        else:
            c.expect_close(1007)


def fail_fast(first_frame_bytes):
    """Invalid UTF-8 in an unfinished message: 1007 before the rest is sent (RFC 6455 8.1)."""
    def run(env):
        with Client(env.port) as c:
            c.send_frame(OP_TEXT, first_frame_bytes, fin=False)
            c.expect_close(1007, timeout=2.0)  # the rest of the message is never sent
    return run


add_case("6.10.1", "fail fast: invalid byte in the first fragment, message unfinished",
         fail_fast(KOSME[:5] + b"\xf4\x90\x80\x80"))
add_case("6.10.2", "fail fast: surrogate in the first fragment, message unfinished",
         fail_fast(b"abc\xed\xa0\x80"))
add_case("6.10.3", "fail fast: overlong at the start of the first fragment",
         fail_fast(b"\xc0\xaf" + b"x" * 100))


@case("6.10.4", "fail fast: invalid byte split over fragments 1 and 2, message unfinished")
def _(env):
    with Client(env.port) as c:
        c.send(frame(OP_TEXT, b"ab\xed", fin=False) + frame(OP_CONT, b"\xa0", fin=False))
        c.expect_close(1007, timeout=2.0)


@case("6.11.1", "text ends inside a character over an empty final fragment: 1007")
def _(env):
    fail_case([frame(OP_TEXT, b"ab\xce", fin=False), frame(OP_CONT, b"")], 1007)(env)


@case("6.11.2", "binary messages are not UTF-8 checked")
def _(env):
    echo_case(OP_BINARY, b"\xff\xfe\xed\xa0\x80\xc0")(env)


# ---- 7 close handling ----

@case("7.1.1", "echo, then close 1000: closing handshake")
def _(env):
    with Client(env.port) as c:
        c.send_frame(OP_TEXT, "Hello")
        c.expect_echo(OP_TEXT, "Hello")
        c.finish()


def after_close_case(frames, before=()):
    """frames, pipelined, hold our close frame: what follows it goes unanswered; the events in
    before (answers to what precedes it) come back, then the close."""
    def run(env):
        with Client(env.port) as c:
            c.send_after_close(b"".join(frames))
            for kind, value in before:
                c.expect(kind, value)
            c.expect_close(1000)
    return run


_CLOSE = frame(OP_CLOSE, close_payload(1000))
_BIG = b"BAsd7&jh23" * 26214 + b"Bj"
add_case("7.1.2", "two close frames: one close back, then TCP close",
         after_close_case([_CLOSE, _CLOSE]))
add_case("7.1.3", "ping after close: no pong",
         after_close_case([_CLOSE, frame(OP_PING, b"after close")]))
add_case("7.1.4", "text after close: no echo",
         after_close_case([_CLOSE, frame(OP_TEXT, "after close")]))
add_case("7.1.5", "first fragment, close, last fragment: no echo",
         after_close_case([frame(OP_TEXT, "frag1", fin=False), _CLOSE, frame(OP_CONT, "frag2")]))
add_case("7.1.6", "256 KiB message, close, ping: the echo, close, no pong",
         after_close_case([frame(OP_TEXT, _BIG), _CLOSE, frame(OP_PING, b"x")],
                          before=[("text", _BIG)]))


def close_echo(payload, want):
    def run(env):
        with Client(env.port) as c:
            c.send_frame(OP_CLOSE, payload)
            c.expect_close(want)
    return run


add_case("7.3.1", "close without payload: empty close back", close_echo(b"", None))
add_case("7.3.2", "close with a 1-byte payload fails with 1002", close_echo(b"\x03", 1002))
add_case("7.3.3", "close 1000 without reason", close_echo(close_payload(1000), 1000))
add_case("7.3.4", "close 1000 with a reason", close_echo(close_payload(1000, "Hello World!"),
                                                         1000))
add_case("7.3.5", "close with a 123-byte reason (125-byte payload)",
         close_echo(close_payload(1000, "*" * 123), 1000))
add_case("7.3.6", "close with a 124-byte reason (126-byte payload) fails with 1002",
         close_echo(close_payload(1000, "*" * 124), 1002))
add_case("7.5.1", "close reason with invalid UTF-8 fails with 1007",
         close_echo(close_payload(1000, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() +
                                  b"\xed\xa0\x80edited"), 1007))
add_case("7.5.2", "close reason ending inside a character fails with 1007",
         close_echo(close_payload(1000, b"abc\xce"), 1007))
add_case("7.5.3", "close reason that is an overlong: 1007",
         close_echo(close_payload(1000, b"\xc0\xaf"), 1007))
for i, code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999,
                          4000, 4999]):
    add_case("7.7.%d" % (i + 1), "valid close code %d is echoed" % code,
             close_echo(close_payload(code), code))
for i, code in enumerate([0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000,
                          2999, 5000, 65535]):
    add_case("7.9.%d" % (i + 1), "invalid close code %d fails with 1002" % code,
             close_echo(close_payload(code), 1002))


def data_after_close(env):
    with Client(env.port) as c:
        c.send_close(1000)
        c.expect("close", (1000, ""))
        c.send(frame(OP_TEXT, "late") + frame(OP_PING, b"late"))
        c.expect_eof()


@case("7.13.1", "data after our close and the server's: nothing answered, TCP closed")
def _(env):
    data_after_close(env)


@case("7.13.2", "7.13.1 200 times over: the server's FIN always comes before the reset the "
      "late bytes draw, so the end is always a clean EOF")
def _(env):
    for _ in range(200):
        data_after_close(env)


# ---- 9 limits and performance (sizes up to WSD_MAX_MESSAGE) ----

def sizes_upto(env):
    return [s for s in (65536, 262144, env.max_message) if s <= env.max_message]


def big_echo(opcode, size_fn, frag=None, chop=None):
    def run(env):
        size = size_fn(env)
        payload = (b"*" if opcode == OP_TEXT else b"\xfe") * size
        with Client(env.port, timeout=30) as c:
            if frag:
                c.send_message(opcode, payload, frag=frag)
            else:
                c.send(frame(opcode, payload), chop=chop)
            c.expect_echo(opcode, payload)
            c.finish()
    return run


for i, s in enumerate([65536, 262144, 1048576]):
    add_case("9.1.%d" % (i + 1), "text message of %d bytes" % s,
             big_echo(OP_TEXT, lambda env, s=s: min(s, env.max_message)))
    add_case("9.2.%d" % (i + 1), "binary message of %d bytes" % s,
             big_echo(OP_BINARY, lambda env, s=s: min(s, env.max_message)))
for i, f in enumerate([64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]):
    add_case("9.3.%d" % (i + 1), "1 MiB text message in %d-byte fragments" % f,
             big_echo(OP_TEXT, lambda env: env.max_message, frag=f))
    add_case("9.4.%d" % (i + 1), "1 MiB binary message in %d-byte fragments" % f,
             big_echo(OP_BINARY, lambda env: env.max_message, frag=f))
for i, ch in enumerate([64, 128, 256, 512, 1024, 2048]):
    add_case("9.5.%d" % (i + 1), "256 KiB text message sent in %d-byte chops" % ch,
             big_echo(OP_TEXT, lambda env: 262144, chop=ch))
    add_case("9.6.%d" % (i + 1), "256 KiB binary message sent in %d-byte chops" % ch,
             big_echo(OP_BINARY, lambda env: 262144, chop=ch))


def many_small(opcode, size, count):
    def run(env):
        with Client(env.port, timeout=30) as c:
            payload = (b"*" if opcode == OP_TEXT else b"\xfe") * size
            c.send(frame(opcode, payload) * count)
            for _ in range(count):
                c.expect_echo(opcode, payload)
            c.finish()
    return run


for i, s in enumerate([0, 16, 64, 256, 1024, 4096]):
    add_case("9.7.%d" % (i + 1), "1000 text messages of %d bytes, pipelined" % s,
             many_small(OP_TEXT, s, 1000))
    add_case("9.8.%d" % (i + 1), "1000 binary messages of %d bytes, pipelined" % s,
             many_small(OP_BINARY, s, 1000))


@case("9.9.1", "message of exactly WSD_MAX_MESSAGE bytes, fragmented: echoed")
def _(env):
    big_echo(OP_BINARY, lambda e: e.max_message, frag=300000)(env)


@case("9.9.2", "one frame of WSD_MAX_MESSAGE + 1 bytes: 1009 before its payload")
def _(env):
    n = env.max_message + 1
    hdr = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", n) + b"\0\0\0\0"
    fail_case([hdr], 1009)(env)  # only the header is sent: the answer cannot wait for data


@case("9.9.3", "fragments adding up to WSD_MAX_MESSAGE + 1 bytes: 1009")
def _(env):
    half = env.max_message // 2
    fail_case([frame(OP_BINARY, b"\0" * half, fin=False),
               frame(OP_CONT, b"\0" * (env.max_message - half), fin=False),
               frame(OP_CONT, b"\0")], 1009)(env)


@case("9.9.4", "frame header announcing 2^62 bytes: 1009 at once")
def _(env):
    fail_case([bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 62) + b"\0\0\0\0"], 1009)(env)


@case("9.10.1", "WSD_MAX_FRAGMENTS one-byte fragments: echoed")
def _(env):
    n = env.max_fragments
    payload = bytes(i & 0xFF for i in range(n))
    big_echo_frags(env, payload, n)


@case("9.10.2", "WSD_MAX_FRAGMENTS + 1 one-byte fragments: 1009, within 5 s")
def _(env):
    n = env.max_fragments + 1
    frames = [frame(OP_BINARY, b"x", fin=False, mask_key=b"\0\0\0\0")]
    frames += [frame(OP_CONT, b"x", fin=False, mask_key=b"\0\0\0\0")] * (n - 1)
    frames.append(frame(OP_CONT, b"x", mask_key=b"\0\0\0\0"))
    t0 = time.monotonic()
    fail_case(frames, 1009)(env)
    if time.monotonic() - t0 > 5:
        raise Fail("took %.1f s" % (time.monotonic() - t0))


@case("9.10.3", "a flood of empty continuation frames ends with 1009")
def _(env):
    z = b"\0\0\0\0"
    frames = [frame(OP_TEXT, b"", fin=False, mask_key=z)]
    frames += [frame(OP_CONT, b"", fin=False, mask_key=z)] * (env.max_fragments + 10)
    fail_case(frames, 1009)(env)


def big_echo_frags(env, payload, n):
    z = b"\0\0\0\0"
    frames = [frame(OP_BINARY if i == 0 else OP_CONT, payload[i:i + 1], fin=i == n - 1,
                    mask_key=z) for i in range(n)]
    with Client(env.port, timeout=30) as c:
        c.send(b"".join(frames))
        c.expect_echo(OP_BINARY, payload)
        c.finish()


# ---- 10 auto-fragmentation ----

@case("10.1.1", "65536-byte text auto-fragmented by the client at 1300 bytes: echoed")
def _(env):
    echo_case(OP_TEXT, "*" * 65536, frag=1300)(env)


@case("10.1.2", "65536-byte binary auto-fragmented at 1300, pings between: pongs, echo")
def _(env):
    payload = os.urandom(65536)
    pieces = [payload[i:i + 1300] for i in range(0, len(payload), 1300)]
    _frag_ping(env, pieces, [0, 10, 30], opcode=OP_BINARY)


# ---- 12 permessage-deflate: messages of every size and kind ----

def _payloads(kind, size, seed):
    rnd = random.Random(seed)
    if kind == "text":
        words = ["alpha", "beta", "gamma", "\u00e9t\u00e9", "\u03ba\u03cc\u03c3\u03bc\u03b5",
                 "\U0001f600", "delta", "epsilon"]
        out = []
        n = 0
        while n < size:
            w = rnd.choice(words) + " "
            out.append(w)
            n += len(w.encode())
        s = "".join(out).encode()[:size]
        while True:  # cut at a character boundary
            try:
                s.decode()
                return s
            except UnicodeDecodeError:
                s = s[:-1]
    if kind == "random":
        return rnd.randbytes(size)
    if kind == "json":
        items = []
        while sum(map(len, items)) < size:
            items.append('{"id":%d,"name":"user%d","ok":true}' % (len(items), rnd.randint(0, 99)))
        return ("[" + ",".join(items) + "]").encode()[:size]
    return rnd.randbytes(size).translate(bytes(0x61 + (b & 1) for b in range(256)))


DEFLATE_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]
KINDS = [("12.1", "text", OP_TEXT), ("12.2", "random", OP_BINARY), ("12.3", "json", OP_TEXT),
         ("12.4", "twosym", OP_BINARY)]


def deflate_series(ext, size, kind, opcode, count=10, compress=True, frag=None, port=None,
                   expect_ext=True):
    def run(env):
        with Client(port(env) if port else env.port, extensions=ext, timeout=20) as c:
            if expect_ext and c.deflate is None:
                raise Fail("permessage-deflate not accepted: %r" % c.extension_header)
            if not expect_ext and c.deflate is not None:
                raise Fail("permessage-deflate accepted: %r" % c.extension_header)
            msgs = [_payloads(kind, size, i) for i in range(count)]
            for m in msgs:
                if c.deflate:
                    c.send_message(opcode, m, compress=compress, frag=frag)
                else:
                    c.send_message(opcode, m, frag=frag)
            for m in msgs:
                ev = c.expect_echo(opcode, m)
                if c.deflate and size >= 1024 and kind != "random" and not ev[2]:
                    raise Fail("a compressible %d-byte echo came back uncompressed" % size)
            c.finish()
    return run


for sec, kind, op in KINDS:
    for i, size in enumerate(DEFLATE_SIZES):
        add_case("%s.%d" % (sec, i + 1), "deflate: 10 %s messages of %d bytes" % (kind, size),
                 deflate_series("permessage-deflate", size, kind, op))
for i, size in enumerate(DEFLATE_SIZES):
    add_case("12.5.%d" % (i + 1),
             "deflate: 10 text messages of %d bytes, compressed ones fragmented at 100" % size,
             deflate_series("permessage-deflate", size, "text", OP_TEXT, frag=100))


# ---- 13 permessage-deflate: negotiated parameters ----

OFFERS = [
    ("13.1", "permessage-deflate", True, "default offer"),
    ("13.2", "permessage-deflate; client_no_context_takeover", True,
     "client_no_context_takeover"),
    ("13.3", "permessage-deflate; server_max_window_bits=9", True, "server_max_window_bits=9"),
    ("13.4", "permessage-deflate; server_max_window_bits=15", True, "server_max_window_bits=15"),
    ("13.5", "permessage-deflate; server_no_context_takeover; server_max_window_bits=9", True,
     "server_no_context_takeover, server_max_window_bits=9"),
    ("13.6", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=15; client_max_window_bits=15", True, "every parameter"),
    ("13.7", "permessage-deflate; server_max_window_bits=8, permessage-deflate; "
     "server_no_context_takeover, permessage-deflate", True,
     "3 offers, the first not acceptable (window 8)"),
    ("13.8", "permessage-deflate; client_max_window_bits=9", True, "client_max_window_bits=9"),
    ("13.9", "permessage-deflate; server_max_window_bits=8", False,
     "server_max_window_bits=8 alone: declined (zlib cannot), uncompressed"),
]
for sec, offer, ok, desc in OFFERS:
    for i, size in enumerate([64, 1024, 16384, 131072]):
        add_case("%s.%d" % (sec, i + 1), "deflate %s: 10 json messages of %d bytes" %
                 (desc, size), deflate_series(offer, size, "json", OP_TEXT, expect_ext=ok))


def check_response(offer, want, port_attr="port"):
    def run(env):
        with Client(getattr(env, port_attr), extensions=offer) as c:
            if c.extension_header != want:
                raise Fail("offer %r: answered %r, want %r" % (offer, c.extension_header, want))
            # The same message twice: a server that takes over its context when it agreed not
            # to, or uses a bigger window than it answered, sends what Deflate cannot inflate.
            m = _payloads("json", 2000, 5)
            for _ in range(2):
                c.send_message(OP_TEXT, m, compress=c.deflate is not None)
            for _ in range(2):
                c.expect_echo(OP_TEXT, m, compressed=c.deflate is not None)
            c.finish()
    return run


add_case("13.10.1", "offer with a repeated parameter is declined",
         check_response("permessage-deflate; server_no_context_takeover; "
                        "server_no_context_takeover", None))
add_case("13.10.2", "offer with an unknown parameter is declined",
         check_response("permessage-deflate; foo=bar", None))
add_case("13.10.3", "offer with server_max_window_bits=16 is declined",
         check_response("permessage-deflate; server_max_window_bits=16", None))
add_case("13.10.4", "offer with server_max_window_bits without value is declined",
         check_response("permessage-deflate; server_max_window_bits", None))
add_case("13.10.5", "offer with client_no_context_takeover=1 is declined",
         check_response("permessage-deflate; client_no_context_takeover=1", None))
add_case("13.10.6", "bad offer then good offer: the good one is accepted",
         check_response("permessage-deflate; x=1, permessage-deflate; server_max_window_bits=10",
                        "permessage-deflate; server_max_window_bits=10"))
add_case("13.10.7", "offers in two Sec-WebSocket-Extensions headers: first acceptable wins",
         check_response(["x-foo", "permessage-deflate; client_no_context_takeover"],
                        "permessage-deflate; client_no_context_takeover"))
add_case("13.10.8", "quoted value server_max_window_bits=\"12\" is accepted",
         check_response('permessage-deflate; server_max_window_bits="12"',
                        "permessage-deflate; server_max_window_bits=12"))
add_case("13.10.9", "Chromium's offer: accepted without parameters",
         check_response("permessage-deflate; client_max_window_bits", "permessage-deflate"))
add_case("13.10.10", "WSD_DEFLATE=off: no extension answered",
         check_response("permessage-deflate", None, port_attr="port_off"))

# RFC 7692 7.1: the exact answer to each parameter. server_max_window_bits is answered with
# the value offered (9-15); 8 cannot be honoured (zlib's raw deflate has no 256-byte window)
# and may not be answered with more, so that offer is declined. client_max_window_bits is
# accepted with or without a value and left unanswered: wsd inflates any window up to 2^15.
PMD = "permessage-deflate"
EXACT = [
    ("", PMD, "no parameters"),
    ("; server_no_context_takeover", PMD + "; server_no_context_takeover",
     "server_no_context_takeover: answered"),
    ("; client_no_context_takeover", PMD + "; client_no_context_takeover",
     "client_no_context_takeover: answered"),
    ("; server_max_window_bits=9", PMD + "; server_max_window_bits=9",
     "server_max_window_bits=9: answered with 9"),
    ("; server_max_window_bits=12", PMD + "; server_max_window_bits=12",
     "server_max_window_bits=12: answered with 12"),
    ("; server_max_window_bits=15", PMD + "; server_max_window_bits=15",
     "server_max_window_bits=15: answered with 15"),
    ("; server_max_window_bits=8", None, "server_max_window_bits=8: declined (zlib cannot)"),
    ("; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9",
     PMD + "; server_max_window_bits=9", "server_max_window_bits=8, then 9: the second offer"),
    ("; server_max_window_bits=7", None, "server_max_window_bits=7: declined"),
    ("; server_max_window_bits=09", None, "server_max_window_bits=09 (leading zero): declined"),
    ("; client_max_window_bits", PMD, "bare client_max_window_bits: accepted, not answered"),
    ("; client_max_window_bits=8", PMD, "client_max_window_bits=8: accepted, not answered"),
    ("; client_max_window_bits=15", PMD, "client_max_window_bits=15: accepted, not answered"),
    ("; client_max_window_bits=7", None, "client_max_window_bits=7: declined"),
    ("; client_max_window_bits=16", None, "client_max_window_bits=16: declined"),
    ("; server_no_context_takeover=1", None, "server_no_context_takeover with a value: declined"),
    ("; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
     "client_max_window_bits=10", PMD + "; server_no_context_takeover; "
     "client_no_context_takeover; server_max_window_bits=10", "all four parameters"),
]
for i, (params, want, desc) in enumerate(EXACT):
    add_case("13.13.%d" % (i + 1), "exact answer, %s" % desc,
             check_response(PMD + params, want))


def deflate_conn(env, offer="permessage-deflate"):
    c = Client(env.port, extensions=offer)
    if c.deflate is None:
        c.close()
        raise Fail("permessage-deflate not accepted")
    return c


@case("13.11.1", "compressed and uncompressed messages mixed on one connection")
def _(env):
    with deflate_conn(env) as c:
        msgs = [(_payloads("json", 3000, i), i % 2 == 0) for i in range(10)]
        for m, comp in msgs:
            c.send_message(OP_TEXT, m, compress=comp)
        for m, _c in msgs:
            c.expect_echo(OP_TEXT, m)
        c.finish()


@case("13.11.2", "client context takeover: the second message is a back-reference")
def _(env):
    with deflate_conn(env) as c:
        m = _payloads("json", 5000, 1)
        c.send_message(OP_TEXT, m, compress=True)
        c.send_message(OP_TEXT, m, compress=True)  # compresses to a few bytes
        c.expect_echo(OP_TEXT, m)
        c.expect_echo(OP_TEXT, m)
        c.finish()


def deflate_fail(send, code, port_attr="port"):
    """On a connection that offered permessage-deflate (and, on the default port, got it),
    send(c, env) does something wrong; the server must close with code."""
    def run(env):
        with Client(getattr(env, port_attr), extensions="permessage-deflate") as c:
            if port_attr == "port" and c.deflate is None:
                raise Fail("permessage-deflate not accepted")
            send(c, env)
            c.expect_close(code)
    return run


def deflate_echo(make, opcode=OP_BINARY):
    """A compressed message make(env) (a big one: 30 s bounds) is echoed."""
    def run(env):
        with deflate_conn(env) as c:
            c.timeout = 30
            m = make(env)
            c.send_message(opcode, m, compress=True)
            c.expect_echo(opcode, m)
            c.finish()
    return run


def _rsv1_on_continuation(c, env):
    z = c.deflate.compress(b"hello hello hello")
    c.send(frame(OP_TEXT, z[:3], fin=False, rsv=RSV1) + frame(OP_CONT, z[3:], rsv=RSV1))


def _raw_compressed_hello(c, env):
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    z = comp.compress(b"Hello") + comp.flush(zlib.Z_SYNC_FLUSH)
    c.send_frame(OP_TEXT, z[:-4], rsv=RSV1)


add_case("13.11.3", "compressed text that inflates to invalid UTF-8: 1007", deflate_fail(
    lambda c, env: c.send_message(OP_TEXT, b"valid start " * 10 + b"\xed\xa0\x80",
                                  compress=True), 1007))
add_case("13.11.4", "compressed text ending inside a character: 1007", deflate_fail(
    lambda c, env: c.send_message(OP_TEXT, b"abc " * 20 + b"\xce", compress=True), 1007))
add_case("13.11.5", "compressed text with invalid UTF-8, fragmented at 3 bytes: 1007",
         deflate_fail(lambda c, env: c.send_message(OP_TEXT, b"xyz" * 30 + b"\xc0\xaf",
                                                    compress=True, frag=3), 1007))


@case("13.11.6", "zip bomb: 64 MiB of zeros in ~64 KiB: 1009 at WSD_MAX_MESSAGE")
def _(env):
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    z = comp.compress(bytes(64 << 20)) + comp.flush(zlib.Z_SYNC_FLUSH)
    t0 = []
    deflate_fail(lambda c, env: t0.append(time.monotonic()) or
                 c.send_frame(OP_BINARY, z[:-4], rsv=RSV1), 1009)(env)
    if time.monotonic() - t0[0] > 3:
        raise Fail("1009 took %.1f s" % (time.monotonic() - t0[0]))


add_case("13.11.7", "compressed message inflating to exactly WSD_MAX_MESSAGE: echoed",
         deflate_echo(lambda env: bytes(env.max_message)))
add_case("13.11.8", "compressed message inflating to WSD_MAX_MESSAGE + 1: 1009", deflate_fail(
    lambda c, env: c.send_message(OP_BINARY, bytes(env.max_message + 1), compress=True), 1009))
add_case("13.11.9", "RSV1 on a continuation frame: 1002",
         deflate_fail(_rsv1_on_continuation, 1002))
add_case("13.11.10", "RSV1 on a ping: 1002",
         deflate_fail(lambda c, env: c.send_frame(OP_PING, b"x", rsv=RSV1), 1002))
add_case("13.11.11", "corrupt DEFLATE data: 1007", deflate_fail(
    lambda c, env: c.send_frame(OP_BINARY, b"\xff\xff\xff\xff\xff", rsv=RSV1), 1007))


@case("13.11.12", "RFC 7692 7.2.3 samples: fixed, back-reference, stored, BFINAL blocks")
def _(env):
    with deflate_conn(env) as c:
        for z in (b"\xf2\x48\xcd\xc9\xc9\x07\x00", b"\xf2\x00\x11\x00\x00",
                  b"\x00\x05\x00\xfa\xff\x48\x65\x6c\x6c\x6f\x00",
                  b"\xf3\x48\xcd\xc9\xc9\x07\x00\x00", b"\xf2\x00\x11\x00\x00"):
            c.send_frame(OP_TEXT, z, rsv=RSV1)
        for _ in range(5):
            c.expect_echo(OP_TEXT, b"Hello")
        c.finish()


@case("13.11.13", "compressed empty message (a single 0x00): echoed")
def _(env):
    with deflate_conn(env) as c:
        c.send_frame(OP_TEXT, b"\x00", rsv=RSV1)
        c.send_frame(OP_BINARY, b"", rsv=RSV1)
        c.expect_echo(OP_TEXT, b"")
        c.expect_echo(OP_BINARY, b"")
        c.finish()


add_case("13.11.14", "RSV1 when the extension was declined: 1002",
         deflate_fail(_raw_compressed_hello, 1002, port_attr="port_off"))


@case("13.11.15", "ping between fragments of a compressed message: pong, echo")
def _(env):
    with deflate_conn(env) as c:
        m = _payloads("text", 4000, 3)
        z = c.deflate.compress(m)
        c.send(frame(OP_TEXT, z[:50], fin=False, rsv=RSV1) + frame(OP_PING, b"p") +
               frame(OP_CONT, z[50:]))
        c.expect("pong", b"p")
        c.expect_echo(OP_TEXT, m)
        c.finish()


@case("13.12.1", "server_no_context_takeover: random (incompressible) messages echoed")
def _(env):
    deflate_series("permessage-deflate; server_no_context_takeover", 4096, "random",
                   OP_BINARY)(env)


@case("13.12.2", "server_no_context_takeover: each compressed echo inflates on its own")
def _(env):
    # Deflate() inflates each message with a fresh inflater when the server agreed to it.
    deflate_series("permessage-deflate; server_no_context_takeover", 8192, "json", OP_TEXT,
                   count=20)(env)


add_case("13.11.16", "1 MiB of random bytes compressed (wire > WSD_MAX_MESSAGE): echoed",
         deflate_echo(lambda env: os.urandom(env.max_message)))
def compressed_fragments(n):
    """A compressed binary message (random bytes: more compressed bytes than n) in exactly n
    fragments, RSV1 on the first only."""
    def send(c, env):
        m = os.urandom(n + 4096)
        z = c.deflate.compress(m)
        zero = b"\0\0\0\0"
        cuts = [len(z) * k // n for k in range(n + 1)]
        c.send(b"".join(frame(OP_BINARY if k == 0 else OP_CONT, z[cuts[k]:cuts[k + 1]],
                              fin=k == n - 1, rsv=RSV1 if k == 0 else 0, mask_key=zero)
                        for k in range(n)))
        return m
    return send


@case("13.14.1", "compressed message in WSD_MAX_FRAGMENTS fragments: echoed")
def _(env):
    with deflate_conn(env) as c:
        c.timeout = 30
        m = compressed_fragments(env.max_fragments)(c, env)
        c.expect_echo(OP_BINARY, m)
        c.finish()


add_case("13.14.2", "compressed message in WSD_MAX_FRAGMENTS + 1 fragments: 1009",
         lambda env: deflate_fail(compressed_fragments(env.max_fragments + 1), 1009)(env))
add_case("13.14.3", "RSV1 on the continuation of an uncompressed message: 1002",
         deflate_fail(lambda c, env: c.send(frame(OP_TEXT, "He", fin=False) +
                                            frame(OP_CONT, "llo", rsv=RSV1)), 1002))
add_case("13.14.4", "RSV1 on the last of 3 fragments of a compressed message: 1002",
         deflate_fail(lambda c, env: c.send(
             frame(OP_TEXT, c.deflate.compress(b"hello hello")[:2], fin=False, rsv=RSV1) +
             frame(OP_CONT, b"", fin=False) + frame(OP_CONT, b"\x00", rsv=RSV1)), 1002))
add_case("13.14.5", "RSV1 on a pong: 1002",
         deflate_fail(lambda c, env: c.send_frame(OP_PONG, b"x", rsv=RSV1), 1002))
add_case("13.14.6", "pong with 126 bytes between fragments of a compressed message: 1002",
         deflate_fail(lambda c, env: c.send(
             frame(OP_TEXT, c.deflate.compress(b"hello hello"), fin=False, rsv=RSV1) +
             frame(OP_PONG, b"\xfe" * 126) + frame(OP_CONT, b"")), 1002))


add_case("13.11.17", "compressed frame over WSD_MAX_MESSAGE * 9/8 + 1 KiB on the wire: 1009",
         deflate_fail(lambda c, env: c.send(
             bytes([0x82 | 0x40, 0x80 | 127]) +
             struct.pack("!Q", env.max_message + env.max_message // 8 + 1025) + b"\0\0\0\0"),
             1009))
