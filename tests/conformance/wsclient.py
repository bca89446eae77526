# SPDX-License-Identifier: MIT
"""The conformance suite's client: the integration harness's raw client (wsdtest.RawWs) with
what the suite adds on top: permessage-deflate (RFC 7692, with the stdlib zlib), sends that
keep reading so a big pipelined burst cannot deadlock, and strict reading of the server's
frames (minimal lengths, control-frame and fragmentation rules, RSV bits), so a case can
check exactly what came back. Only 127.0.0.1 is ever used; every read has a timeout."""

import os
import select
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "integration"))

from wsdtest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402,F401
                     Closed, Fail, RawWs, close_payload, frame)

TAIL = b"\x00\x00\xff\xff"
RSV1, RSV2, RSV3 = 4, 2, 1


class Deflate:
    """The client's half of permessage-deflate, from the server's response parameters."""

    def __init__(self, params):
        self.params = params
        cbits = params.get("client_max_window_bits") or 15
        self.cbits = max(int(cbits), 9)  # zlib's raw deflate cannot do 8
        self.sbits = int(params.get("server_max_window_bits") or 15)
        self.comp = None
        self.decomp = None

    def compress(self, data):
        if self.comp is None or "client_no_context_takeover" in self.params:
            self.comp = zlib.compressobj(6, zlib.DEFLATED, -self.cbits)
        out = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(TAIL)
        return out[:-4]

    def decompress(self, data, max_len=64 << 20):
        # A fresh inflater per message when the server agreed not to take over its context,
        # and the window it announced: both prove the server keeps its promises.
        if self.decomp is None or "server_no_context_takeover" in self.params:
            self.decomp = zlib.decompressobj(-self.sbits)
        try:
            return self.decomp.decompress(data + TAIL, max_len)
        except zlib.error as e:
            raise Fail("server's compressed message does not inflate: %s" % e)


def parse_extensions(value):
    """'permessage-deflate; a; b=1' -> ('permessage-deflate', {'a': None, 'b': '1'})."""
    if not value:
        return None, {}
    parts = [p.strip() for p in value.split(";")]
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        k = k.strip()
        if k in params:
            raise Fail("server response repeats %s" % k)
        params[k] = v.strip().strip('"') if v else None
    return parts[0], params


class Client(RawWs):
    """One upgraded connection, as a context manager. Frames come back as (fin, rsv, opcode,
    payload); EOF as None. A reset is a failure here, not an EOF: wsd always closes cleanly."""

    RESET_IS_EOF = False

    def __init__(self, port, extensions=None, timeout=5.0):
        super().__init__("127.0.0.1", port, timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sent_close = False
        self.deflate = None
        extra = []
        if extensions is not None:
            extra = [("Sec-WebSocket-Extensions", e)
                     for e in ([extensions] if isinstance(extensions, str) else extensions)]
        try:
            r = self.handshake("/conformance", host="127.0.0.1:%d" % port, extra=extra)
        except Closed:
            raise Fail("connection closed during handshake") from None
        if r.repeated:
            raise Fail("response repeats header(s) %s" % sorted(r.repeated))
        self.extension_header = r.headers.get("sec-websocket-extensions")
        name, self.params = parse_extensions(self.extension_header)
        if name is not None:
            if name != "permessage-deflate":
                raise Fail("server answered unknown extension %r" % name)
            self.deflate = Deflate(self.params)

    # ---- sending ----

    def send(self, data, chop=None):
        """Send raw bytes, whole or in pieces of chop bytes (each its own send()). What the
        server sends meanwhile is read into the buffer, so a big pipelined burst cannot
        deadlock against a server that stops reading while its echoes are unread."""
        pieces = [data] if not chop else [data[i:i + chop] for i in range(0, len(data), chop)]
        deadline = time.monotonic() + self.timeout
        try:
            for piece in pieces:
                view = memoryview(piece)
                while view:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Fail("timed out sending")
                    r, w, _ = select.select([] if self.eof else [self.sock], [self.sock], [],
                                            left)
                    if r:
                        d = self.sock.recv(1 << 20)
                        if not d:
                            self.eof = True
                        self.buf += d
                    if w:
                        n = self.sock.send(view[:1 << 20])
                        view = view[n:]
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may already have failed the connection: its frames tell

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, chop=None, **kw):
        if opcode == OP_CLOSE:
            self.sent_close = True
        self.send(frame(opcode, payload, fin=fin, rsv=rsv, **kw), chop=chop)

    def send_message(self, opcode, payload, compress=False, frag=None):
        """A message, optionally compressed (RSV1 on the first frame only) and fragmented."""
        if isinstance(payload, str):
            payload = payload.encode()
        rsv = 0
        if compress:
            payload = self.deflate.compress(payload)
            rsv = RSV1
        if not frag or len(payload) <= frag:
            self.send_frame(opcode, payload, rsv=rsv)
            return
        out = []
        for i in range(0, len(payload), frag):
            piece = payload[i:i + frag]
            out.append(frame(opcode if i == 0 else OP_CONT, piece, fin=i + frag >= len(payload),
                             rsv=rsv if i == 0 else 0))
        self.send(b"".join(out))

    def send_close(self, code=1000, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def send_after_close(self, data):
        """Pipelined bytes that start with our close frame."""
        self.sent_close = True
        self.send(data)

    # ---- receiving ----

    def recv_frame(self, timeout=None):
        """The next frame, or None at EOF. Raises Fail on a timeout or a malformed frame."""
        head = self._need(2, timeout)
        if head is None:
            return None
        b0, b1 = head
        if b1 & 0x80:
            raise Fail("server frame is masked")
        n = b1 & 0x7F
        extra = {126: 2, 127: 8}.get(n, 0)
        full = self._need(2 + extra, timeout)
        if full is None:
            raise Fail("EOF inside a frame header")
        if extra:
            n = struct.unpack("!H" if extra == 2 else "!Q", full[2:2 + extra])[0]
            if n < (126 if extra == 2 else 65536):
                raise Fail("server used a non-minimal length")
        whole = self._need(2 + extra + n, timeout)
        if whole is None:
            raise Fail("EOF inside a frame payload")
        self.buf = self.buf[2 + extra + n:]
        return (bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, whole[2 + extra:])

    def _need(self, n, timeout):
        """The first n buffered bytes, reading as needed; None at EOF before n."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            try:
                self._fill(deadline)
            except Closed:
                return None
            except socket.timeout:
                raise Fail("timed out waiting for the server") from None
        return self.buf[:n]

    def recv_event(self, timeout=None):
        """The next whole thing the server sent: ('text'|'binary', data, compressed),
        ('ping'|'pong', payload, False), ('close', (code, reason), False) or ('eof', None,
        False). Checks fragmentation, RSV and control-frame rules on the server's side."""
        msg_op, parts, compressed = None, [], False
        while True:
            f = self.recv_frame(timeout)
            if f is None:
                if msg_op is not None:
                    raise Fail("EOF inside a fragmented message")
                return ("eof", None, False)
            fin, rsv, op, payload = f
            if op >= 8:
                return self._control_event(fin, rsv, op, payload)
            if op == OP_CONT:
                if msg_op is None:
                    raise Fail("server sent a continuation without a start")
                if rsv:
                    raise Fail("server set RSV on a continuation")
            elif op in (OP_TEXT, OP_BINARY):
                if msg_op is not None:
                    raise Fail("server started a message inside another")
                msg_op = op
                if rsv & RSV1:
                    if self.deflate is None:
                        raise Fail("server set RSV1 without permessage-deflate")
                    compressed = True
                if rsv & (RSV2 | RSV3):
                    raise Fail("server set RSV2/RSV3")
            else:
                raise Fail("server sent reserved opcode %d" % op)
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                if compressed:
                    data = self.deflate.decompress(data)
                if msg_op == OP_TEXT:
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise Fail("server sent invalid UTF-8 text")
                return ("text" if msg_op == OP_TEXT else "binary", data, compressed)

    @staticmethod
    def _control_event(fin, rsv, op, payload):
        if not fin or len(payload) > 125 or rsv:
            raise Fail("bad control frame from server")
        if op == OP_CLOSE:
            if len(payload) == 1:
                raise Fail("server close payload of 1 byte")
            code = struct.unpack("!H", payload[:2])[0] if payload else None
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise Fail("server close reason is not UTF-8")
            return ("close", (code, reason), False)
        if op == OP_PING:
            return ("ping", payload, False)
        if op == OP_PONG:
            return ("pong", payload, False)
        raise Fail("server sent reserved opcode %d" % op)

    # ---- expectations ----

    def expect(self, kind, value=None, timeout=None):
        """The next event must be kind (and carry value, if not None). Returns the event."""
        ev = self.recv_event(timeout)
        if ev[0] != kind or (value is not None and ev[1] != value):
            raise Fail("expected %s %s, got %s %s" % (kind, short(value), ev[0], short(ev[1])))
        return ev

    def expect_echo(self, opcode, payload, compressed=None):
        if isinstance(payload, str):
            payload = payload.encode()
        ev = self.expect("text" if opcode == OP_TEXT else "binary", payload)
        if compressed is not None and ev[2] != compressed:
            raise Fail("echo was %scompressed" % ("" if ev[2] else "not "))
        return ev

    def expect_close(self, code, timeout=None):
        """The server's close frame with code (None: an empty close), then its TCP close."""
        ev = self.recv_event(timeout)
        if ev[0] == "eof":
            raise Fail("TCP closed without a close frame (expected %s)" % code)
        if ev[0] != "close":
            raise Fail("expected close %s, got %s %s" % (code, ev[0], short(ev[1])))
        if ev[1][0] != code:
            raise Fail("expected close %s, got close %s" % (code, ev[1][0]))
        # Answer it if we have not closed yet, then the server must end TCP.
        if not self.sent_close:
            self.send_close(code if code not in (None, 1005, 1006) else None)
        self.expect_eof(timeout)

    def expect_eof(self, timeout=None):
        ev = self.recv_event(timeout)
        if ev[0] != "eof":
            raise Fail("expected TCP close, got %s %s" % (ev[0], short(ev[1])))

    def finish(self, code=1000):
        """Our normal closing handshake: close, the server's echo of it, TCP close."""
        self.send_close(code)
        ev = self.recv_event()
        if ev[0] != "close" or ev[1][0] != code:
            raise Fail("closing: expected close %d, got %s %s" % (code, ev[0], short(ev[1])))
        self.expect_eof()

    def barrier(self):
        """Prove nothing else is pending: a ping whose pong must be the next event."""
        token = os.urandom(8)
        self.send_frame(OP_PING, token)
        self.expect("pong", token)


def short(v):
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
