#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Race-free termination (issue 3): wsctl list/show/kill/stats/drain, the SIGTERM -> SIGKILL
ladder, kill -TERM compatibility, the heartbeat (dead peer and stuck worker), the abuse
detector and the per-IP cap, worker reuse with a kill that crossed its connection's end, and
a real PID reuse in a PID namespace. Every case checks the process table and fds it touched."""

import asyncio
import ctypes
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

from wsdtest import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, SLOW, WSCTL, WSD_BIN,
                     Closed, Fail, RawWs, Skip, Wsd, await_until, case, check, conn_id, echo_once,
                     expect_server_close, frame, kv, local_port, pid_alive, pid_gone,
                     recv_within, run, upgrade_request, wait_until, ws_connect, wsctl)

HERE = os.path.dirname(os.path.abspath(__file__))


def terminated_line(w, cid, timeout=5):
    rx = re.compile(r": terminated conn=%d " % cid)
    return wait_until(lambda: next((l for l in w.log_lines() if rx.search(l)), None), timeout,
                      f"the 'terminated conn={cid}' log line")


class RawFrom(RawWs):
    """A raw connection from a chosen loopback source address (127.0.0.2 is another client)."""

    def __init__(self, w, source, timeout=5):
        self.sock = socket.create_connection((w.host, w.port), timeout * SLOW,
                                             source_address=(source, 0))
        self.sock.settimeout(timeout * SLOW)
        self.timeout = timeout * SLOW
        self.buf = b""
        self.eof = False


# ---------------------------------------------------------------------------------------------
# wsctl and the ladder


@case("wsctl list/show/--json show the connection; kill --code --reason arrives as that close "
      "frame; a second kill answers 'no such connection'")
async def kill_with_code_and_reason():
    with Wsd() as w:
        async with ws_connect(w, "/chat?room=1") as ws:
            await ws.send("hi")
            check(await recv_within(ws) == "hi", "echo")
            port = local_port(ws)
            cid = conn_id(w, port)
            pid = w.worker_of(port)
            rc, out, err = wsctl(w, "list")
            check(rc == 0, f"wsctl list: {rc} {err}")
            row = [l for l in out.splitlines() if l.split()[:1] == [str(cid)]]
            check(row and str(pid) in row[0] and f":{port}" in row[0] and "/chat?room=1" in row[0],
                  f"list row for conn {cid}: {out}")
            rc, out, err = wsctl(w, "list", "--json")
            entries = json.loads(out)
            check(rc == 0 and [e["pid"] for e in entries if e["id"] == cid] == [pid],
                  f"list --json: {out}")
            check(entries[0]["in_msgs"] == 1 and entries[0]["out_bytes"] == 2,
                  f"counters in list --json: {entries}")
            rc, out, err = wsctl(w, "show", cid)
            check(rc == 0 and f"pid: {pid}" in out and "state: open" in out, f"show: {out} {err}")
            t0 = time.monotonic()
            rc, out, err = wsctl(w, "kill", cid, "--code", "4001", "--reason", "bye now ✓")
            check(rc == 0, f"wsctl kill: {rc} {out} {err}")
            e = await expect_server_close(ws, 3)
            check(e.rcvd is not None and e.rcvd.code == 4001 and e.rcvd.reason == "bye now ✓",
                  f"client saw {e!r}")
            check(time.monotonic() - t0 < 3, "close took too long")
            line = terminated_line(w, cid)
            check("cause=operator" in line and "code=4001" in line and "escalated=no" in line,
                  line)
            await await_until(lambda: pid_gone(pid), 3, "the worker to be reaped")
            rc, out, err = wsctl(w, "kill", cid)
            check(rc == 1 and "no such connection" in err, f"second kill: {rc} {out} {err}")
            rc, out, err = wsctl(w, "show", cid)
            check(rc == 1 and "no such connection" in err, f"show after end: {rc} {err}")
        w.check_clean()


@case("wsctl kill without --code closes with 1008; --force ends TCP at once with no close frame")
async def kill_default_and_force():
    with Wsd() as w:
        async with ws_connect(w) as a, ws_connect(w) as b:
            await a.send("a")
            await b.send("b")
            await recv_within(a)
            await recv_within(b)
            ca, cb = conn_id(w, local_port(a)), conn_id(w, local_port(b))
            rc, _, err = wsctl(w, "kill", ca)
            check(rc == 0, err)
            e = await expect_server_close(a, 3)
            check(e.rcvd is not None and e.rcvd.code == 1008, f"default code: {e!r}")
            t0 = time.monotonic()
            rc, _, err = wsctl(w, "kill", cb, "--force")
            check(rc == 0, err)
            e = await expect_server_close(b, 3)
            check(e.rcvd is None, f"--force sent a close frame: {e!r}")
            check(time.monotonic() - t0 < 2, "--force was not prompt")
            line = terminated_line(w, cb)
            check("signals=KILL" in line and "code=1006" in line, line)
        w.check_clean()


@case("a worker that ignores SIGTERM (test-stubborn) is SIGKILLed after WSD_KILL_GRACE_MS")
async def stubborn_worker_escalates():
    with Wsd(env={"WSD_HANDLER": "test-stubborn", "WSD_KILL_GRACE_MS": "400"}) as w:
        async with ws_connect(w) as ws:
            await ws.send("x")
            await recv_within(ws)
            cid, pid = conn_id(w, local_port(ws)), w.worker_of(local_port(ws))
            t0 = time.monotonic()
            rc, _, err = wsctl(w, "kill", cid, "--code", "4000")
            check(rc == 0, err)
            e = await expect_server_close(ws, 5)
            took = time.monotonic() - t0
            check(e.rcvd is None, f"a stubborn worker sent a close frame? {e!r}")
            check(0.35 <= took <= 2.5, f"ended {took:.2f} s after the kill (grace 0.4 s)")
            line = terminated_line(w, cid)
            check("signals=TERM,CONT,KILL" in line and "escalated=yes" in line, line)
            await await_until(lambda: pid_gone(pid), 3, "the stubborn worker to be reaped")
            rc, out, _ = wsctl(w, "stats")
            check("escalations: 1" in out and "kills: 1" in out, out)
        w.check_clean()


@case("two stubborn workers put on the ladder 0.4 s apart are each SIGKILLed a grace after "
      "their own SIGTERM (the supervisor keeps the next deadline, not just the first)")
async def stubborn_workers_escalate_in_turn():
    grace = 0.8
    with Wsd(env={"WSD_HANDLER": "test-stubborn", "WSD_KILL_GRACE_MS": str(int(grace * 1000))}) as w:
        async with ws_connect(w) as a, ws_connect(w) as b:
            for ws in (a, b):
                await ws.send("x")
                await recv_within(ws)
            ca, cb = conn_id(w, local_port(a)), conn_id(w, local_port(b))
            ended = {}

            async def watch(name, ws):
                try:
                    await expect_server_close(ws, grace + 2.0)
                    ended[name] = time.monotonic()
                except asyncio.TimeoutError:
                    ended[name] = None

            watchers = [asyncio.create_task(watch("a", a)), asyncio.create_task(watch("b", b))]
            ta = time.monotonic()
            check(wsctl(w, "kill", ca)[0] == 0, "kill a")
            await asyncio.sleep(0.4)
            tb = time.monotonic()
            check(wsctl(w, "kill", cb)[0] == 0, "kill b")
            await asyncio.gather(*watchers)
            check(None not in ended.values(), f"a connection was never ended: {ended}")
            # never before the grace; the upper bound only catches a deadline that was lost
            check(ended["a"] - ta >= grace - 0.05 and ended["b"] - tb >= grace - 0.05,
                  f"a ended {ended['a'] - ta:.2f} s, b {ended['b'] - tb:.2f} s after its kill")
            check(ended["b"] - tb <= grace + 2.0 * SLOW, f"b ended {ended['b'] - tb:.2f} s late")
            for cid in (ca, cb):
                line = terminated_line(w, cid)
                check("signals=TERM,CONT,KILL" in line and "escalated=yes" in line, line)
            rc, out, _ = wsctl(w, "stats")
            check("escalations: 2" in out, out)
        w.check_clean()


@case("kill -TERM <worker pid> (the old way) closes that connection with 1001")
async def plain_kill_term():
    with Wsd() as w:
        async with ws_connect(w) as ws, ws_connect(w) as other:
            await ws.send("x")
            await recv_within(ws)
            os.kill(w.worker_of(local_port(ws)), signal.SIGTERM)
            e = await expect_server_close(ws, 3)
            check(e.rcvd is not None and e.rcvd.code == 1001, f"{e!r}")
            await other.send("still")
            check(await recv_within(other) == "still", "the other connection")
        w.check_clean()


SYS_RECVFROM, SYS_EPOLL_WAIT = 45, 232  # x86_64


def waiting_in(pid):
    """The system call the process is blocked in (/proc/PID/syscall), or None if running."""
    with open(f"/proc/{pid}/syscall") as f:
        first = f.read().split()[0]
    return int(first) if first.lstrip("-").isdigit() else None


def wsctl_kill(w, cid, code):
    rc, _, err = wsctl(w, "kill", cid, "--code", str(code))
    check(rc == 0, err)


def check_no_escalations(w):
    """No worker needed SIGKILL: every termination ended with its close frame."""
    rc, out, _ = wsctl(w, "stats")
    check("escalations: 0" in out, out)


@case("once a message came, a worker waits for its client in recv(), not epoll_wait() "
      "(core/wake.h); wsctl kill and kill -TERM still reach it there")
async def waits_in_recv():
    if os.uname().machine != "x86_64":
        raise Skip("the system call numbers are x86_64's")
    with Wsd() as w:
        async with ws_connect(w) as a, ws_connect(w) as b:
            pa, pb = w.worker_of(local_port(a)), w.worker_of(local_port(b))
            wait_until(lambda: waiting_in(pa) == SYS_EPOLL_WAIT, 3,
                       "A's worker to wait in epoll_wait before any message")
            for ws, pid in ((a, pa), (b, pb)):
                await ws.send("m")
                check(await recv_within(ws) == "m", "echo")
                wait_until(lambda: waiting_in(pid) == SYS_RECVFROM, 3,
                           f"worker {pid} to wait in recvfrom after a message")
            wsctl_kill(w, conn_id(w, local_port(a)), 4003)
            e = await expect_server_close(a, 3)
            check(e.rcvd is not None and e.rcvd.code == 4003, f"{e!r}")
            os.kill(pb, signal.SIGTERM)
            e = await expect_server_close(b, 3)
            check(e.rcvd is not None and e.rcvd.code == 1001, f"{e!r}")
            check_no_escalations(w)
        w.check_clean()


@case("kills racing busy connections: 40 clients echo without pause while wsctl kills them "
      "one by one; each gets its close code and no worker needs SIGKILL")
async def kills_race_busy_reads():
    n = 40
    with Wsd(env={"WSD_KILL_GRACE_MS": "2000"}) as w:
        conns = [await ws_connect(w) for _ in range(n)]
        try:
            async def pump(ws):  # send, read the echo, repeat: the worker keeps waking
                try:
                    while True:
                        await ws.send("x" * 100)
                        await ws.recv()
                except Exception as e:
                    return e

            pumps = [asyncio.create_task(pump(ws)) for ws in conns]
            await asyncio.sleep(0.3)
            ids = [conn_id(w, local_port(ws)) for ws in conns]
            for i, cid in enumerate(ids):
                wsctl_kill(w, cid, 4000 + i)
                await asyncio.sleep(0.01)
            ends = await asyncio.wait_for(asyncio.gather(*pumps), 10 * SLOW)
            for i, e in enumerate(ends):
                check(getattr(e, "rcvd", None) is not None and e.rcvd.code == 4000 + i,
                      f"connection {i}: {e!r}")
        finally:
            for ws in conns:
                await ws.close()
        check_no_escalations(w)
        w.check_clean()


@case("wsctl refuses bad input with one line and exit 1: close codes that may not be sent, "
      "long or non-UTF-8 reasons, unknown ids, a socket nobody listens on; usage errors exit 2")
async def wsctl_bad_input():
    with Wsd() as w:
        async with ws_connect(w) as ws:
            await ws.send("x")
            await recv_within(ws)
            cid = conn_id(w, local_port(ws))
            for code in (1004, 1005, 1006, 1015, 999, 2999, 5000, 70000):
                rc, out, err = wsctl(w, "kill", cid, "--code", code)
                check(rc == 1 and "close code may not be sent" in err and err.count("\n") == 1,
                      f"code {code}: {rc} {err!r}")
            rc, _, err = wsctl(w, "kill", cid, "--reason", "x" * 124)
            check(rc == 1 and "longer than 123" in err, f"long reason: {err!r}")
            rc, _, err = wsctl(w, "kill", cid, "--reason", b"\xff\xfe")
            check(rc == 1 and "UTF-8" in err, f"bad UTF-8 reason: {err!r}")
            rc, _, err = wsctl(w, "kill", "123456")
            check(rc == 1 and "no such connection" in err, f"unknown id: {err!r}")
            rc, _, err = wsctl(w, "kill", "--peer", "10.1.2.3")
            check(rc == 1 and "no connections from 10.1.2.3" in err, f"unknown peer: {err!r}")
            rc, _, err = wsctl(w, "frobnicate")
            check(rc == 2, f"usage error: {rc} {err!r}")
            # still open and echoing after all that
            await ws.send("alive")
            check(await recv_within(ws) == "alive", "the connection survived bad requests")
        p = subprocess.run([WSCTL, "-s", os.path.join(w.tmp, "nobody.sock"), "list"],
                           capture_output=True, text=True, timeout=5)
        check(p.returncode == 1 and "cannot connect" in p.stderr, f"{p.returncode} {p.stderr!r}")
        w.check_clean()


@case("the control socket is mode 0600 and checks SO_PEERCRED: another uid is refused")
def control_socket_permissions():
    if os.geteuid() != 0:
        raise Skip("needs root to run wsctl as another uid")
    with Wsd() as w:
        path = os.path.join(w.tmp, "ctl.sock")
        mode = os.stat(path).st_mode & 0o777
        check(mode == 0o600, f"control socket mode {mode:o}")
        # open the door on purpose, so that only wsd's own SO_PEERCRED check stands in the way
        os.chmod(w.tmp, 0o711)
        os.chmod(path, 0o666)
        rc, out, err = wsctl(w, "list", user=65534)
        check(rc == 1 and "permission denied" in err and "65534" in err, f"{rc} {out!r} {err!r}")
        rc, out, err = wsctl(w, "stats")
        check(rc == 0 and "accepted:" in out, f"root still allowed: {rc} {err}")
        w.check_clean()


@case("wsctl kill --peer IP ends every connection from that IP, and only those")
async def kill_by_peer():
    with Wsd() as w:
        async with ws_connect(w) as a:
            await a.send("a")
            await recv_within(a)
            with RawFrom(w, "127.0.0.2") as r1, RawFrom(w, "127.0.0.2") as r2:
                r1.handshake()
                r2.handshake()
                rc, out, err = wsctl(w, "kill", "--peer", "127.0.0.2", "--code", "4444")
                check(rc == 0 and "2 connections" in out, f"{rc} {out} {err}")
                r1.expect_close(4444)
                r2.expect_close(4444)
            await a.send("untouched")
            check(await recv_within(a) == "untouched", "the 127.0.0.1 connection")
        w.check_clean()


@case("wsctl stats counts accepted, open, closed by cause and refused handshakes")
async def stats_counts():
    with Wsd() as w:
        with w.raw() as c:
            c.send(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
            check(c.read_http().status == 405, "405")
        async with ws_connect(w) as ws:
            await ws.send("x")
            await recv_within(ws)
            rc, out, _ = wsctl(w, "stats", "--json")
            st = json.loads(out)
            check(st["open"] == 1 and st["accepted"] >= 2 and st["handshake_failed_405"] == 1,
                  f"stats: {st}")
        await await_until(lambda: json.loads(wsctl(w, "stats", "--json")[1])["closed"] == 1, 3,
                          "closed to count 1")
        w.check_clean()


@case("wsctl drain: every client gets 1001, wsd exits 0 with nothing left behind")
async def drain():
    w = Wsd().start()
    try:
        async with ws_connect(w) as a, ws_connect(w) as b:
            await a.send("a")
            await b.send("b")
            await recv_within(a)
            await recv_within(b)
            rc, out, err = wsctl(w, "drain")
            check(rc == 0 and "draining" in out, f"{rc} {out} {err}")
            for ws in (a, b):
                e = await expect_server_close(ws, 5)
                check(e.rcvd is not None and e.rcvd.code == 1001, f"{e!r}")
        await await_until(lambda: not w.running(), 8, "wsd to exit after drain")
        w.stop()
    except BaseException:
        w.kill()
        raise


# ---------------------------------------------------------------------------------------------
# heartbeat


HB = {"WSD_PING_INTERVAL_MS": "300", "WSD_PING_TIMEOUT_MS": "300", "WSD_CLOSE_TIMEOUT_MS": "300",
      "WSD_KILL_GRACE_MS": "500"}

CLIENT = r"""
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1], compression=None, ping_interval=None) as ws:
        await ws.send("hello")
        await ws.recv()
        print(ws.local_address[1], flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


async def tcp_established(port):
    """Whether a TCP connection with local or remote port `port` is established (ss, run
    without blocking the event loop)."""
    p = await asyncio.create_subprocess_exec("ss", "-tnH", "state", "established",
                                             stdout=subprocess.PIPE)
    out, _ = await p.communicate()
    return f":{port} " in out.decode()


@case("dead peer: a client that stops answering (SIGSTOP) is closed within interval + timeout "
      "+ one tick; a live client that answers pings is never closed")
async def heartbeat_dead_peer():
    # The live client answers pings from this event loop: nothing below may block it for
    # longer than the ping timeout, or wsd rightly calls the live client dead too.
    with Wsd(env=HB) as w:
        async with ws_connect(w) as live:  # websockets answers pings by itself
            client = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CLIENT, w.url("/dead"), stdout=subprocess.PIPE)
            try:
                port = int(await asyncio.wait_for(client.stdout.readline(), 10 * SLOW))
                cid = int(kv(await await_until(lambda: w._peer_line("open", port), 5,
                                               f"the 'open' line of port {port}"))["conn"])
                # let a few pings be answered, then freeze the client
                await asyncio.sleep(0.8)
                t0 = time.monotonic()
                client.send_signal(signal.SIGSTOP)
                line = await await_until(
                    lambda: next((l for l in w.log_lines()
                                  if re.search(r": terminated conn=%d " % cid, l)), None),
                    4, "the dead peer's termination")
                took = time.monotonic() - t0
                # interval + timeout after the last pong, plus the worker's report and this
                # loop's polling (scheduling, scaled like every bound here)
                bound = (int(HB["WSD_PING_INTERVAL_MS"]) + int(HB["WSD_PING_TIMEOUT_MS"])) / 1000
                check(took <= bound + 1.0 * SLOW,
                      f"detected {took:.2f} s after the client stopped (bound {bound:.1f} s)")
                check("cause=heartbeat" in line and "code=1001" in line, line)
                # its TCP connection ends: the worker is gone
                deadline = time.monotonic() + 5 * SLOW
                while await tcp_established(port):
                    check(time.monotonic() < deadline, "the dead peer's TCP connection to end")
                    await asyncio.sleep(0.02)
            finally:
                client.kill()
                await client.wait()
            # the live client saw 2+ s of pings and is still here
            await live.send("alive")
            check(await recv_within(live) == "alive", "the live client was closed")
            check(live.close_code is None, "the live client was closed")
        w.check_clean()


@case("heartbeat while a worker waits in recv(): after a message, an idle client that answers "
      "pings gets one every interval and is never taken for dead or stuck; once it stops "
      "answering, it is closed with 1001 (cause=heartbeat)")
def heartbeat_in_recv_wait():
    interval = int(HB["WSD_PING_INTERVAL_MS"]) / 1000
    with Wsd(env=HB) as w:
        with w.raw() as c:
            c.handshake()
            c.send_frame(OP_TEXT, "m")
            check(c.recv_message()[:2] == (OP_TEXT, b"m"), "echo")
            pid, cid = w.worker_of(c.local_port), conn_id(w, c.local_port)
            if os.uname().machine == "x86_64":
                wait_until(lambda: waiting_in(pid) == SYS_RECVFROM, 3,
                           "the worker to wait in recvfrom")
            pings, t0 = 0, time.monotonic()
            while time.monotonic() - t0 < 8 * interval:  # silent but for pongs
                f = c.recv_frame(timeout=3 * interval)
                check(f.opcode == OP_PING, f"only pings while idle, got {f!r}")
                c.send_frame(OP_PONG, f.payload)
                pings += 1
            check(pings >= 5, f"{pings} pings in {8 * interval:.1f} s at a {interval} s interval")
            check(not any(": terminated conn=" in l for l in w.log_lines()),
                  "an idle client that answers pings was terminated")
            t1 = time.monotonic()  # now stop answering: the dead-peer verdict
            while True:
                f = c.recv_frame(timeout=5)
                if f.opcode == OP_CLOSE:
                    break
                check(f.opcode == OP_PING, f"{f!r}")
            check(f.close_code() == 1001, f"{f!r}")
            bound = interval + int(HB["WSD_PING_TIMEOUT_MS"]) / 1000
            took = time.monotonic() - t1
            check(took <= bound + 1.0 * SLOW, f"closed {took:.2f} s after the last pong")
        line = terminated_line(w, cid)
        check("cause=heartbeat" in line, line)
        w.check_clean()


@case("stuck worker: one that stops making progress is terminated by the supervisor and "
      "SIGKILLed when it ignores SIGTERM")
async def heartbeat_stuck_worker():
    env = dict(HB, WSD_HANDLER="test-stubborn")
    with Wsd(env=env) as w:
        async with ws_connect(w) as ws:
            await ws.send("x")
            await recv_within(ws)
            cid, pid = conn_id(w, local_port(ws)), w.worker_of(local_port(ws))
            await ws.send("spin")  # the test handler now loops forever
            t0 = time.monotonic()
            e = await expect_server_close(ws, 6)
            took = time.monotonic() - t0
            check(e.rcvd is None, f"a spinning worker cannot send a close frame: {e!r}")
            # 0.6 s without progress + 1 s scan + 0.5 s grace + a tick
            check(took <= 3.5, f"stuck worker ended after {took:.2f} s")
            line = terminated_line(w, cid)
            check("cause=heartbeat" in line and "escalated=yes" in line, line)
            await await_until(lambda: pid_gone(pid), 3, "the stuck worker to be reaped")
        w.check_clean()


# ---------------------------------------------------------------------------------------------
# abuse and per-IP caps


@case("abuse: a client sending unmasked frames over and over gets its IP's connections ended "
      "(1008) and 429 for the ban; 127.0.0.1 is unaffected; the ban expires")
async def abuse_ban():
    env = {"WSD_ABUSE_LIMIT": "3", "WSD_ABUSE_WINDOW_MS": "10000", "WSD_ABUSE_BAN_MS": "1500"}
    with Wsd(env=env) as w:
        async with ws_connect(w) as good:
            await good.send("g")
            await recv_within(good)
            bystander = RawFrom(w, "127.0.0.2")
            bystander.handshake()
            # Accepted before the ban, their requests sent only after the 1008: the acceptor
            # must know of the ban by the time it hands them off, not just when it accepts.
            early = [RawFrom(w, "127.0.0.2") for _ in range(4)]
            for i in range(3):
                with RawFrom(w, "127.0.0.2") as bad:
                    bad.handshake()
                    bad.send(frame(OP_TEXT, b"unmasked", mask=False))
                    bad.expect_close(1002)
            bystander.expect_close(1008)
            bystander.close()
            for c in early:
                c.send(upgrade_request())
            # and new connections made right after the 1008, as fast as a client can
            late = [RawFrom(w, "127.0.0.2") for _ in range(4)]
            for c in late:
                c.send(upgrade_request())
            for c in early + late:
                with c:
                    r = c.read_http()
                    check(r.status == 429, f"banned IP got {r.status} after its 1008")
            await good.send("still")
            check(await recv_within(good) == "still", "127.0.0.1's connection")
            echo_once(w, "new")  # 127.0.0.1 still gets new connections
            # the supervisor logs the ban after signalling the workers: it may trail the 1008
            await await_until(lambda: any("abuse: banning 127.0.0.2" in l for l in w.log_lines()),
                              3, "the ban log line")
            await asyncio.sleep(1.7)
            with RawFrom(w, "127.0.0.2") as c:
                c.handshake()
        w.check_clean()


@case("WSD_MAX_CONNS_PER_IP: the next handshake from that IP gets 429, other IPs are served")
async def per_ip_cap():
    with Wsd(env={"WSD_MAX_CONNS_PER_IP": "2"}) as w:
        with RawFrom(w, "127.0.0.2") as a, RawFrom(w, "127.0.0.2") as b:
            a.handshake()
            b.handshake()
            with RawFrom(w, "127.0.0.2") as c:
                c.send(upgrade_request())
                check(c.read_http().status == 429, "third from 127.0.0.2")
            with RawFrom(w, "127.0.0.3") as d:
                d.handshake()
        # once they end, the IP may connect again
        await asyncio.sleep(0.3)
        with RawFrom(w, "127.0.0.2") as e:
            e.handshake()
        w.check_clean()


def refused_429(w, source):
    with RawFrom(w, source) as c:
        c.send(upgrade_request())
        return c.read_http().status == 429


@case("a restarted acceptor starts from the supervisor's view: SIGKILLed while 127.0.0.2 is at "
      "WSD_MAX_CONNS_PER_IP and 127.0.0.3 is banned, its successor still refuses both with 429, "
      "serves 127.0.0.4, and lets 127.0.0.2 in again once one of its connections ends")
async def acceptor_restart_keeps_caps_and_bans():
    env = {"WSD_MAX_CONNS_PER_IP": "2", "WSD_ABUSE_LIMIT": "2", "WSD_ABUSE_WINDOW_MS": "60000",
           "WSD_ABUSE_BAN_MS": "60000"}
    with Wsd(env=env) as w:
        with RawFrom(w, "127.0.0.2") as a, RawFrom(w, "127.0.0.2") as b:
            a.handshake()
            b.handshake()
            for _ in range(2):
                with RawFrom(w, "127.0.0.3") as bad:
                    bad.handshake()
                    bad.send(frame(OP_TEXT, b"unmasked", mask=False))
                    bad.expect_close(1002)
            wait_until(lambda: any("abuse: banning 127.0.0.3" in l for l in w.log_lines()), 3,
                       "the ban of 127.0.0.3")
            check(refused_429(w, "127.0.0.2") and refused_429(w, "127.0.0.3"),
                  "cap and ban before the restart")
            acc = w.acceptor()
            os.kill(acc, signal.SIGKILL)
            await await_until(lambda: pid_gone(acc), 3, f"the old acceptor {acc} to be reaped")
            await await_until(lambda: w.acceptor() not in (None, acc), 5, "a new acceptor")
            check(refused_429(w, "127.0.0.2"), "the restarted acceptor forgot 127.0.0.2's count")
            check(refused_429(w, "127.0.0.3"), "the restarted acceptor forgot the ban")
            with RawFrom(w, "127.0.0.4") as d:
                d.handshake()
            # the seeded count goes down with the connections it counts
            a.close()
            await await_until(lambda: json.loads(wsctl(w, "stats", "--json")[1])["open"] == 1,
                              3, "the supervisor to see 127.0.0.2's first connection end")
            with RawFrom(w, "127.0.0.2") as c:
                c.handshake()
                check(refused_429(w, "127.0.0.2"), "127.0.0.2 over its cap after the restart")
        w.check_clean()


# ---------------------------------------------------------------------------------------------
# worker reuse and PID reuse

_libc = ctypes.CDLL(None, use_errno=True)
SYS_rt_sigqueueinfo = 129  # x86_64


def sigqueue_kill(pid, conn, code=0):
    """SIGTERM with an SI_QUEUE si_value, exactly as the supervisor sends it."""
    info = bytearray(128)
    struct.pack_into("iii", info, 0, signal.SIGTERM, 0, -1)  # signo, errno, SI_QUEUE
    struct.pack_into("iIQ", info, 16, os.getpid(), os.getuid(), (code << 48) | conn)
    buf = (ctypes.c_char * len(info)).from_buffer(info)
    if _libc.syscall(SYS_rt_sigqueueinfo, pid, signal.SIGTERM, buf) != 0:
        raise OSError(ctypes.get_errno(), "rt_sigqueueinfo")


@case("WSD_WORKER_REUSE: A ends, the same worker takes B; a kill for A in flight leaves B "
      "untouched, wsctl kill A answers 'no such connection', a kill for B closes B")
async def reuse_stale_kill():
    if os.uname().machine != "x86_64":
        raise Skip("the rt_sigqueueinfo syscall number is x86_64's")
    with Wsd(env={"WSD_WORKER_REUSE": "10", "WSD_POOL_MIN": "1"}) as w:
        async with ws_connect(w, "/a") as a:
            await a.send("a")
            await recv_within(a)
            ca, pa = conn_id(w, local_port(a)), w.worker_of(local_port(a))
        # the idle pool now holds A's worker and one spare; try until A's worker takes B
        for _ in range(10):
            b = await ws_connect(w, "/b")
            await b.send("b")
            await recv_within(b)
            cb, pb = conn_id(w, local_port(b)), w.worker_of(local_port(b))
            if pb == pa:
                break
            await b.close()
        check(pb == pa, f"no connection landed on A's worker {pa}")
        try:
            rc, _, err = wsctl(w, "kill", ca)
            check(rc == 1 and "no such connection" in err, f"kill A: {rc} {err}")
            sigqueue_kill(pa, ca, 4001)  # the kill for A that was already in flight
            await asyncio.sleep(0.3)
            await b.send("b still")
            check(await recv_within(b) == "b still", "B was touched by A's kill")
            sigqueue_kill(pa, cb, 4002)
            e = await expect_server_close(b, 3)
            check(e.rcvd is not None and e.rcvd.code == 4002, f"B's kill: {e!r}")
        finally:
            await b.close()
        check(pid_alive(pa), "a reused worker exited after a targeted kill")
        w.wait_no_zombies()  # several idle workers are normal with reuse: no check_clean


@case("PID reuse, for real: in a PID namespace, A's old pid goes to B's worker; kill(old_pid) "
      "would hit B, wsctl kill A answers 'no such connection' and B keeps echoing",
      timeout=60)
def pid_reuse_namespace():
    if os.geteuid() != 0:
        raise Skip("needs root for unshare --pid and /proc/sys/kernel/ns_last_pid")
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        raise Skip(f"cannot create a PID namespace here: {probe.stderr.strip()}")
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable,
                        os.path.join(HERE, "pidreuse_scenario.py")],
                       capture_output=True, text=True, timeout=50 * SLOW,
                       env=dict(os.environ, WSD_BIN=WSD_BIN))
    out = p.stdout + p.stderr
    if p.returncode == 77:
        raise Skip(out.strip().splitlines()[-1] if out.strip() else "scenario skipped")
    check(p.returncode == 0, f"scenario failed ({p.returncode}):\n{out}")
    for want in ("same pid", "kill(old_pid) would hit B", "wsctl: no such connection",
                 "B still echoes"):
        check(want in out, f"scenario output lacks {want!r}:\n{out}")


if __name__ == "__main__":
    run()
