#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""wss://: the worker runs TLS. Real clients (python3-websockets with a verified chain
root -> intermediate -> leaf, openssl s_client, a raw TLS socket) against the real binary:
echo over TLS, versions and ALPN, bad input on the TLS port, bad requests answered through TLS
then close_notify, bad certificates at startup, SIGHUP reload, and server-side closes
(wsctl kill, heartbeat) that end with an encrypted close frame and then close_notify."""

import asyncio
import os
import shutil
import re
import signal
import socket
import ssl
import struct
import subprocess
import time
import urllib.request
import uuid

from testcerts import TestPKI
from wsdtest import (OP_CLOSE, OP_PING, OP_TEXT, SLOW, WSD_BIN, Closed, RawWs, Wsd, case,
                     check, close_payload, expect_server_close, local_port, marked_pids,
                     pid_gone, recv_within, run, upgrade_request, wait_until)

WSCTL = os.path.join(os.path.dirname(WSD_BIN), "wsctl")
pki = TestPKI()
CHAIN, KEY, SERIAL = pki.leaf("leaf")


def tls_env(chain=CHAIN, key=KEY, **more):
    env = {"WSD_TLS_LISTEN": "127.0.0.1:0", "WSD_TLS_CERT": chain, "WSD_TLS_KEY": key,
           "WSD_POOL_MIN": "2"}
    env.update(more)
    return env


def wss_port(w):
    m = wait_until(lambda: re.search(r"listening on wss://127\.0\.0\.1:(\d+)/", w.log()), 5,
                   "the 'listening on wss://' line")
    return int(m.group(1))


class TlsWsd:
    """One wsd with a ws:// and a wss:// listener, shared by the cases that need no special
    configuration; finish() checks processes and fds, then stops it."""

    def __init__(self):
        self.w = None

    def __call__(self):
        if self.w is None or self.w.stopped:
            self.w = Wsd(env=tls_env()).start()
            self.w.tls_port = wss_port(self.w)
        return self.w


srv = TlsWsd()


def start(**env):
    w = Wsd(env=tls_env(**env)).start()
    w.tls_port = wss_port(w)
    return w


def wss_connect(w, path="/", **kw):
    import websockets

    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 5 * SLOW)
    kw.setdefault("close_timeout", 5 * SLOW)
    return websockets.connect(f"wss://127.0.0.1:{w.tls_port}{path}", ssl=pki.client_context(),
                              **kw)


class TlsRaw(RawWs):
    """RawWs over TLS (verified chain). A clean end of the stream is close_notify: recv returns
    b"" only then; a TCP close without it raises ssl.SSLEOFError."""

    def __init__(self, port, timeout=5, handshake=True):
        super().__init__("127.0.0.1", port, timeout)
        ctx = pki.client_context()
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = ctx.wrap_socket(self.sock, server_hostname="127.0.0.1",
                                    suppress_ragged_eofs=False)
        self.close_notify = False

    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed by the server")
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        d = self.sock.recv(65536)
        if not d:
            self.eof = self.close_notify = True
            raise Closed("close_notify")
        self.buf += d

    def expect_close_notify(self, timeout=3):
        deadline = time.monotonic() + timeout * SLOW
        try:
            while True:
                self._fill(deadline)
                self.buf = b""
        except Closed:
            pass
        check(self.close_notify, "the server ended TLS without close_notify")


def log_wait(w, pattern, timeout=5):
    rx = re.compile(pattern)
    return wait_until(lambda: next((l for l in w.log_lines() if rx.search(l)), None), timeout,
                      f"a log line matching {pattern!r}")


def s_client(port, *args, stdin=b""):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile",
                        pki.root, "-verify_return_error", *args], input=stdin,
                       capture_output=True, timeout=10 * SLOW)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def wsctl(w, *args):
    sock = w.env_over.get("WSD_CONTROL_SOCKET") or os.path.join(w.tmp, "ctl.sock")
    p = subprocess.run([WSCTL, "-s", sock, *map(str, args)],
                       capture_output=True, timeout=10 * SLOW)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def stats(w):
    _, out, _ = wsctl(w, "stats")
    return dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)


# ---- echo through real clients


@case("websockets over wss:// with a verified chain (root only trusted): echo at 0/1/125/126/"
      "65535/65536 bytes and 1 MiB, text and binary, fragments, ping, close 4000")
async def echo_sizes():
    w = srv()
    async with wss_connect(w, "/tls") as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        check(tls.selected_alpn_protocol() in (None, "http/1.1"), "ALPN")
        for n in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            m = os.urandom(n)
            await ws.send(m)
            check(await recv_within(ws) == m, f"binary echo of {n} bytes")
        await ws.send("héllo ✓")
        check(await recv_within(ws) == "héllo ✓", "text echo")
        await ws.send(["frag", "ment", "ed"])
        check(await recv_within(ws) == "fragmented", "fragmented message echoed whole")
        pong = await ws.ping(b"tls-ping")
        await asyncio.wait_for(pong, 5 * SLOW)
        await ws.close(4000, "bye")
        check(ws.close_code == 4000, f"close code {ws.close_code}")


@case("permessage-deflate over wss://: negotiated, compressible and random messages echoed")
async def deflate_over_tls():
    w = srv()
    async with wss_connect(w, "/z", compression="deflate") as ws:
        check(any(e.name == "permessage-deflate" for e in ws.extensions),
              f"deflate not negotiated: {ws.extensions}")
        for m in ("abc" * 40000, os.urandom(70000), "x"):
            await ws.send(m)
            check(await recv_within(ws) == m, f"deflate echo of {len(m)}")


# ---- versions and ALPN


@case("openssl s_client: TLS 1.3 and 1.2 with ALPN http/1.1 succeed; 1.1 and 1.0 are refused "
      "(protocol_version) with one log line each")
def versions():
    w = srv()
    for ver, name in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
        rc, out = s_client(w.tls_port, ver, "-alpn", "http/1.1", stdin=b"Q\n")
        check(f"Protocol  : {name}" in out or f"New, {name}" in out, f"{ver}: {out[-800:]}")
        check("ALPN protocol: http/1.1" in out, f"{ver}: no ALPN http/1.1: {out[-800:]}")
        check("Verify return code: 0 (ok)" in out, f"{ver}: chain not verified: {out[-800:]}")
    before = len([l for l in w.log_lines() if "tls handshake failed" in l])
    for ver in ("-tls1_1", "-tls1"):
        rc, out = s_client(w.tls_port, ver, "-cipher", "DEFAULT@SECLEVEL=0")
        check(rc != 0 and "Cipher is (NONE)" in out or "alert protocol version" in out,
              f"{ver} was not refused: {out[-800:]}")
    wait_until(lambda: len([l for l in w.log_lines() if "tls handshake failed" in l]) >= before + 2,
               5, "one 'tls handshake failed' line per refused version")


@case("WSD_TLS_MIN_VERSION=1.3 refuses a TLS 1.2 client and serves 1.3")
def min_version_13():
    w = start(WSD_TLS_MIN_VERSION="1.3")
    try:
        rc, out = s_client(w.tls_port, "-tls1_2")
        check("alert protocol version" in out or "Cipher is (NONE)" in out,
              f"TLS 1.2 accepted: {out[-600:]}")
        rc, out = s_client(w.tls_port, "-tls1_3", stdin=b"Q\n")
        check("TLSv1.3" in out, f"TLS 1.3 failed: {out[-600:]}")
        w.check_clean()
    finally:
        w.stop()


# ---- bad input on the TLS port


@case("plain HTTP, garbage and a stall mid-handshake on the TLS port: alert or close, one log "
      "line each, counted in wsctl stats; an open wss:// connection is untouched")
async def bad_input():
    w = start(WSD_HANDSHAKE_TIMEOUT_MS="600", WSD_METRICS_LISTEN="127.0.0.1:0")
    try:
        async with wss_connect(w, "/bystander") as ws:
            await ws.send("before")
            check(await recv_within(ws) == "before", "echo before")
            for data in (upgrade_request(), os.urandom(300)):
                with RawWs("127.0.0.1", w.tls_port) as c:
                    c.send(data)
                    got = b""
                    try:
                        while True:
                            c._fill(time.monotonic() + 3 * SLOW)
                    except Closed:
                        got = c.buf
                    check(not got.startswith(b"HTTP/"), f"answered in plain text: {got[:60]!r}")
            # a ClientHello cut in half, then silence: closed at the handshake deadline
            with RawWs("127.0.0.1", w.tls_port) as c:
                c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(20))
                t0 = time.monotonic()
                try:
                    while True:
                        c._fill(time.monotonic() + 5 * SLOW)
                except Closed:
                    pass
                took = time.monotonic() - t0
                check(took < 3 * SLOW, f"the stalled handshake was closed after {took:.2f} s")
            log_wait(w, r"tls handshake failed: timed out")
            wait_until(lambda: len([l for l in w.log_lines() if "tls handshake failed" in l]) >= 3,
                       5, "three 'tls handshake failed' lines")
            wait_until(lambda: int(stats(w).get("handshake_failed_tls", 0)) >= 3, 5,
                       "handshake_failed_tls >= 3 in wsctl stats")
            m = wait_until(lambda: re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics",
                                             w.log()), 5, "the metrics line")
            url = f"http://127.0.0.1:{m.group(1)}/metrics"
            text = urllib.request.urlopen(url, timeout=5 * SLOW).read().decode()
            got = re.search(r"^wsd_tls_handshake_failures_total (\d+)", text, re.M)
            check(got and int(got.group(1)) >= 3, f"metrics: {got and got.group(0)}")
            await ws.send("after")
            check(await recv_within(ws) == "after", "the bystander's echo after the bad input")
        w.check_clean()
    finally:
        w.stop()


def _through_tls_case(name, request, status, stall=False):
    def body():
        w = srv()
        with TlsRaw(w.tls_port) as c:
            port = c.local_port
            c.send(request)
            r = c.read_http(5)
            check(r.status == status, f"want {status} through TLS, got {r!r}")
            c.expect_close_notify()
        log_wait(w, rf"refused peer=127\.0\.0\.1:{port} status={status} tls=yes")

    case(f"bad request inside TLS ({name}) -> {status} through TLS, then close_notify, one log "
         "line")(body)


_through_tls_case("no Sec-WebSocket-Key", upgrade_request(omit=("sec-websocket-key",)), 400)
_through_tls_case("Sec-WebSocket-Version: 12", upgrade_request(version="12"), 426)
_through_tls_case("a 70 KiB header", upgrade_request(extra=[("X-Big", "a" * 70000)]), 431)


@case("a request that stops halfway inside TLS -> 408 through TLS at WSD_HANDSHAKE_TIMEOUT_MS "
      "from accept(), then close_notify")
def request_timeout():
    w = start(WSD_HANDSHAKE_TIMEOUT_MS="700")
    try:
        t0 = time.monotonic()
        with TlsRaw(w.tls_port) as c:
            c.send(upgrade_request()[:30])
            r = c.read_http(5)
            took = time.monotonic() - t0
            check(r.status == 408, f"want 408, got {r!r}")
            check(0.5 <= took < 3 * SLOW, f"408 after {took:.2f} s, want about 0.7 s")
            c.expect_close_notify()
        check(int(stats(w)["handshake_failed_408"]) == 1, f"stats: {stats(w)}")
        w.check_clean()
    finally:
        w.stop()


# ---- bad certificates at startup


def _run_bad(env, wrap=()):
    marker = uuid.uuid4().hex
    e = {k: v for k, v in os.environ.items() if not k.startswith("WSD_")}
    e.update({"WSD_LISTEN": "127.0.0.1:0", "WSD_TEST_INSTANCE": marker})
    e.update(env)
    try:
        return subprocess.run([*wrap, WSD_BIN], env=e, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=5 * SLOW)
    finally:
        wait_until(lambda: not marked_pids(marker), 3, "no wsd process left")


@case("bad certificate or key (missing, not PEM, key of another certificate, RSA key for an EC "
      "certificate, expired) -> exit 2, one line naming the file")
def bad_certs():
    other_chain, other_key, _ = pki.leaf("other")
    rsa_chain, rsa_key, _ = pki.leaf("rsa", kind="rsa")
    old_chain, old_key, _ = pki.leaf("old", expired=True)
    junk = os.path.join(pki.dir, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    for what, chain, key, name in (
            ("missing cert", os.path.join(pki.dir, "nope.pem"), KEY, "nope.pem"),
            ("missing key", CHAIN, os.path.join(pki.dir, "nokey.pem"), "nokey.pem"),
            ("cert not PEM", junk, KEY, junk),
            ("key not PEM", CHAIN, junk, junk),
            ("key of another cert", CHAIN, other_key, other_key),
            ("RSA key, EC cert", CHAIN, rsa_key, rsa_key),
            ("expired", old_chain, old_key, old_chain)):
        r = _run_bad(tls_env(chain, key))
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == 2, f"{what}: exit {r.returncode}, want 2; {r.stderr!r}")
        check(len(lines) == 1 and name in lines[0], f"{what}: want one line naming {name}: {lines}")
        if what == "expired":
            check("expired" in lines[0], f"expired: {lines[0]!r}")


@case("a key wsd may not read (mode 000; as root, run without CAP_DAC_OVERRIDE and "
      "CAP_DAC_READ_SEARCH, which would bypass the mode) -> exit 2, one line naming the file")
def unreadable_key():
    key = os.path.join(pki.dir, "locked.key")
    shutil.copyfile(KEY, key)
    os.chmod(key, 0)
    wrap = ()
    if os.geteuid() == 0:  # root reads any file unless these capabilities are gone
        wrap = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")
    r = _run_bad(tls_env(CHAIN, key), wrap)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(r.returncode == 2, f"exit {r.returncode}, want 2; {r.stderr!r}")
    check(len(lines) == 1 and key in lines[0], f"want one line naming {key}: {lines}")


# ---- reload


@case("SIGHUP with a new certificate: the open connection keeps echoing, new connections see "
      "the new serial; a mismatched new key is refused with one line and the old pair stays")
async def reload():
    chain_path = os.path.join(pki.dir, "live.chain.pem")
    key_path = os.path.join(pki.dir, "live.key")
    os.link(CHAIN, chain_path) if not os.path.exists(chain_path) else None
    os.link(KEY, key_path) if not os.path.exists(key_path) else None
    w = start(WSD_TLS_CERT=chain_path, WSD_TLS_KEY=key_path)

    def serial_now():
        with TlsRaw(w.tls_port) as c:
            return int(c.sock.getpeercert()["serialNumber"], 16)

    try:
        check(serial_now() == SERIAL, "first serial")
        async with wss_connect(w, "/old") as old:
            new_chain, new_key, new_serial = pki.leaf("new")
            os.replace(new_chain, chain_path)
            os.replace(new_key, key_path)
            w.send_signal(signal.SIGHUP)
            log_wait(w, r"SIGHUP: new TLS certificate .*serial=%d" % new_serial)
            wait_until(lambda: serial_now() == new_serial, 5, "new connections to get the new serial")
            await old.send("still")
            check(await recv_within(old) == "still", "the old connection echoes after the reload")
            # a key that does not match: refused, the pair loaded before stays
            bad_chain, _, _ = pki.leaf("bad")
            os.replace(bad_chain, chain_path)
            w.send_signal(signal.SIGHUP)
            line = log_wait(w, r"SIGHUP: refused the new certificate")
            check("key.pem" in line or "live.key" in line, f"the line names no file: {line}")
            time.sleep(0.2)
            check(serial_now() == new_serial, "the old pair stays in use after a refused reload")
            await old.send("still 2")
            check(await recv_within(old) == "still 2", "old connection after the refused reload")
            check(not any("left with the last worker" in l for l in w.log_lines()),
                  "the first keyholder left while its connection was open")
        log_wait(w, r"keyholder pid=\d+ left with the last worker of its generation")
        check(len([p for p, name, _ in w.children() if name == "wsd-keyholder"]) == 1,
              f"one keyholder after the old one left: {w.children()}")
        w.check_clean()
    finally:
        w.stop()


@case("WSD_WORKER_REUSE: a worker busy across a certificate reload leaves when its connection "
      "ends instead of serving the next one with the old certificate")
def reuse_across_reload():
    chain_path = os.path.join(pki.dir, "reuse.chain.pem")
    key_path = os.path.join(pki.dir, "reuse.key")
    first_chain, first_key, _ = pki.leaf("reuse1")
    os.replace(first_chain, chain_path)
    os.replace(first_key, key_path)
    w = start(WSD_TLS_CERT=chain_path, WSD_TLS_KEY=key_path, WSD_WORKER_REUSE="100")
    try:
        with TlsRaw(w.tls_port) as c:
            port = c.local_port
            c.handshake("/busy")
            pid = w.worker_of(port)
            new_chain, new_key, new_serial = pki.leaf("reuse2")
            os.replace(new_chain, chain_path)
            os.replace(new_key, key_path)
            w.send_signal(signal.SIGHUP)
            log_wait(w, r"SIGHUP: new TLS certificate .*serial=%d" % new_serial)
            c.send_frame(OP_CLOSE, close_payload(1000))
            c.expect_close(1000, reply=False)
        wait_until(lambda: pid_gone(pid), 5, f"the reused worker {pid} to leave after its connection")
        with TlsRaw(w.tls_port) as c:
            check(int(c.sock.getpeercert()["serialNumber"], 16) == new_serial, "new serial")
        w.wait_no_zombies()  # (with reuse the last worker stays idle: the pool is not exact)
    finally:
        w.stop()


# ---- the private key lives in the keyholder only


def key_secrets(key):
    """Byte strings that betray the key in memory: its private scalar (EC) or prime p (RSA),
    big- and little-endian (wolfCrypt keeps numbers as little-endian words), and a piece of
    its PEM text."""
    text = subprocess.run(["openssl", "pkey", "-in", key, "-text", "-noout"], capture_output=True,
                          text=True, timeout=10).stdout
    m = re.search(r"(?:priv|prime1):\n((?:\s+[0-9a-f:]+\n)+)", text)
    secret = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    secret = secret.lstrip(b"\0")
    pem = "".join(open(key).read().splitlines()[1:-1])
    return [secret, secret[::-1], pem[20:60].encode()]


def memory_has(pid, needles):
    """Which needles occur in the resident memory of pid (via /proc/PID/mem). Regions with
    nothing resident, or over 1 GiB (ASan's reserved shadow), are skipped; the rest is read in
    4 MiB pieces that overlap by the longest needle."""
    found, chunk, over = set(), 4 << 20, max(len(n) for n in needles)
    regions, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m:
                cur = [int(m.group(1), 16), int(m.group(2), 16), m.group(3), line]
                regions.append(cur)
            elif line.startswith("Rss:") and cur is not None:
                cur.append(int(line.split()[1]))
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for lo, hi, perms, desc, *rss in regions:
            if not perms.startswith("r") or not rss or rss[0] == 0 or hi - lo > 1 << 30 \
                    or "[vvar" in desc or "[vsyscall" in desc:
                continue
            for a in range(lo, hi, chunk):
                try:
                    mem.seek(a)
                    data = mem.read(min(chunk + over, hi - a))
                except OSError:
                    continue
                found |= {i for i, n in enumerate(needles) if n in data}
    return found


def _isolation_case(kind):
    def body():
        chain, key, _ = pki.leaf(f"iso-{kind}", kind=kind)
        w = start(WSD_TLS_CERT=chain, WSD_TLS_KEY=key)
        try:
            for ver in ("-tls1_3", "-tls1_2"):  # ECDSA, or RSA-PSS (1.3) and PKCS#1 (1.2)
                rc, out = s_client(w.tls_port, ver, stdin=b"Q\n")
                check("Verify return code: 0 (ok)" in out and "Cipher is (NONE)" not in out,
                      f"{kind} {ver} handshake failed: {out[-600:]}")
            with TlsRaw(w.tls_port) as c:  # a worker that did a handshake, still alive
                c.handshake("/iso")
                needles = key_secrets(key)
                kh = [p for p, name, _ in w.children() if name == "wsd-keyholder"]
                check(len(kh) == 1, f"want one wsd-keyholder, got {w.children()}")
                check(memory_has(kh[0], needles), "the scan finds no trace of the key even in the "
                      "keyholder: it cannot be trusted")
                others = [w.pid] + [p for p, _, st in w.children() if p != kh[0] and st != "Z"]
                for p in others:
                    hits = memory_has(p, needles)
                    check(not hits, f"the key's secret (forms {hits}) is in the memory of pid {p} "
                          f"({open(f'/proc/{p}/comm').read().strip()})")
            w.check_clean()
        finally:
            w.stop()

    case(f"{kind.upper()} key: handshakes with TLS 1.3 and 1.2 are signed by wsd-keyholder; after "
         "them the key's secret is in no memory but the keyholder's (supervisor, acceptor, "
         "workers scanned)")(body)


_isolation_case("ec")
_isolation_case("rsa")


# ---- server-side closes over TLS


@case("wsctl kill over wss://: the close frame (4001 + reason) arrives encrypted, then "
      "close_notify")
def kill_over_tls():
    w = srv()
    with TlsRaw(w.tls_port) as c:
        c.handshake("/victim")
        line = log_wait(w, rf"open conn=\d+ .*peer=127\.0\.0\.1:{c.local_port} .*tls=yes")
        cid = re.search(r"conn=(\d+)", line).group(1)
        rc, out, err = wsctl(w, "kill", cid, "--code", "4001", "--reason", "tls bye")
        check(rc == 0, f"wsctl kill: {rc} {out} {err}")
        f = c.recv_frame(5)
        check(f.opcode == OP_CLOSE and f.close_code() == 4001 and f.payload[2:] == b"tls bye",
              f"want close 4001 'tls bye', got {f!r}")
        c.send_frame(OP_CLOSE, close_payload(4001))
        c.expect_close_notify()


@case("heartbeat over wss://: a client that never answers pings gets encrypted pings, then "
      "close 1001 and close_notify")
def heartbeat_over_tls():
    w = start(WSD_PING_INTERVAL_MS="300", WSD_PING_TIMEOUT_MS="300")
    try:
        with TlsRaw(w.tls_port) as c:
            c.handshake("/silent")
            pings, code = 0, None
            deadline = time.monotonic() + 5 * SLOW
            while code is None and time.monotonic() < deadline:
                f = c.recv_frame(5)
                if f.opcode == OP_PING:
                    pings += 1
                elif f.opcode == OP_CLOSE:
                    code = f.close_code()
            check(pings >= 1 and code == 1001, f"pings={pings} close={code}")
            c.send_frame(OP_CLOSE, close_payload(1001))
            c.expect_close_notify()
        w.check_clean()
    finally:
        w.stop()


@case("teardown: pool back to WSD_POOL_MIN, no zombie, fd counts as at start, clean SIGTERM exit")
def teardown():
    w = srv()
    try:
        w.check_clean()
    finally:
        w.stop()
        pki.cleanup()


run()
