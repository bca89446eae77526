#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Faults: a worker killed by SIGKILL or SIGSEGV, an idle worker or the acceptor killed, clients
that vanish or stop reading. Each time the victim's connection ends promptly, the other
connections keep echoing, the pool refills and nothing is left unreaped."""

import asyncio
import os
import signal
import socket
import struct
import time

from wsdtest import (OP_BINARY, _reap, Shared, Wsd, await_until, case, check, frame,
                     echo_once, expect_server_close, local_port, pid_gone,
                     recv_within, run, wait_until, ws_connect)

srv = Shared(env={"WSD_POOL_MIN": "2"})


def _kill_busy_case(sig):
    async def body():
        w = srv()
        async with ws_connect(w, "/victim") as victim, ws_connect(w, "/bystander") as other:
            await victim.send("v")
            await other.send("o")
            check(await recv_within(victim) == "v" and await recv_within(other) == "o", "echo")
            vpid = w.worker_of(local_port(victim))
            opid = w.worker_of(local_port(other))
            t0 = time.monotonic()
            w.expect_crash(vpid)
            os.kill(vpid, sig)
            e = await expect_server_close(victim, 2)
            took = time.monotonic() - t0
            check(took <= 2, f"the victim's connection ended {took:.2f} s after the signal")
            check(e.rcvd is None, f"a killed worker sent a close frame? {e!r}")
            await await_until(lambda: pid_gone(vpid), 3, f"the killed worker {vpid} to be reaped")
            # the bystander is untouched and still echoes, big messages too
            for m in ("still here", os.urandom(200000)):
                await other.send(m)
                check(await recv_within(other) == m, "the other connection's echo")
            check(w.worker_of(local_port(other)) == opid, "bystander worker changed")
            await await_until(lambda: len(w.idle_workers()) == 2, 5,
                              f"the pool to refill to 2 idle workers ({w.children()})")
        w.check_clean()
        crash = [l for l in w.log_lines() if f"terminated conn=" in l and f"pid={vpid} " in l]
        check(crash and "cause=crash" in crash[0] and "code=1006" in crash[0],
              f"the killed worker {vpid} is not logged as a crash: {crash}")

    return body


case("SIGKILL to a busy worker: its client's TCP ends within 2 s, another connection keeps "
     "echoing, pool refills, no zombie")(_kill_busy_case(signal.SIGKILL))
case("SIGSEGV to a busy worker: its client's TCP ends within 2 s, another connection keeps "
     "echoing, pool refills, no zombie")(_kill_busy_case(signal.SIGSEGV))
case("SIGABRT to a busy worker: its client's TCP ends within 2 s, another connection keeps "
     "echoing, pool refills, no zombie")(_kill_busy_case(signal.SIGABRT))


@case("SIGKILL to an idle worker: replaced, the pool is back to WSD_POOL_MIN, echo works")
def kill_idle_worker():
    w = srv()
    victim = w.idle_workers()[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: pid_gone(victim), 3, f"the idle worker {victim} to be reaped")
    wait_until(lambda: len(w.idle_workers()) == 2 and victim not in w.workers(), 5,
               f"a replacement idle worker ({w.children()})")
    echo_once(w, "after an idle worker died")
    w.check_clean()


@case("SIGKILL to all idle workers at once: the pool refills, echo works")
def kill_all_idle_workers():
    w = srv()
    victims = w.idle_workers()
    for p in victims:
        os.kill(p, signal.SIGKILL)
    wait_until(lambda: all(pid_gone(p) for p in victims), 3, "the idle workers to be reaped")
    w.wait_idle()
    echo_once(w, "after the pool died")
    w.check_clean()


@case("SIGKILL to the acceptor: a new acceptor starts, open connections keep echoing, new ones work")
async def kill_acceptor():
    with Wsd(env={"WSD_POOL_MIN": "2"}) as w:
        async with ws_connect(w, "/open") as ws:
            await ws.send("before")
            check(await recv_within(ws) == "before", "echo")
            acc = w.acceptor()
            os.kill(acc, signal.SIGKILL)
            await await_until(lambda: pid_gone(acc), 3, f"the old acceptor {acc} to be reaped")
            await await_until(lambda: w.acceptor() not in (None, acc), 5, "a new acceptor")
            await ws.send("after")
            check(await recv_within(ws) == "after", "echo on the open connection")
            async with ws_connect(w, "/new") as ws2:
                await ws2.send("new")
                check(await recv_within(ws2) == "new", "echo on a new connection")
        await asyncio.sleep(0)
        w.check_clean()


@case("SIGKILL to wsd itself: every worker and the acceptor leave at once, quietly, none left")
def kill_supervisor():
    w = Wsd(env={"WSD_POOL_MIN": "3"}).start()
    try:
        w.wait_idle()
        family = [p for p, _, _ in w.children()]
        check(len(family) >= 4, f"an acceptor and 3 idle workers ({w.children()})")
        os.kill(w.pid, signal.SIGKILL)
        w.proc.wait(5)
        _reap(family)  # they are orphans of this process (a child subreaper) now
        wait_until(lambda: all(pid_gone(p) for p in family), 3,
                   "the acceptor and the workers to leave after wsd died")
        log = w.log()
        check("malformed handoff" not in log and "recvmsg() failed" not in log,
              "an orphaned worker took the end of the queue for a bad message:\n" + w.log_tail())
    finally:
        w.kill()


@case("a client that resets TCP mid-message: the worker exits, close line code=1006 by=abnormal")
def client_rst():
    w = srv()
    c = w.raw()
    c.handshake()
    port = c.local_port
    pid = w.worker_of(port)
    c.send(b"\x81\xfe\x10\x00\x01\x02\x03\x04" + b"partial")  # 4096-byte text frame, cut short
    time.sleep(0.05)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    wait_until(lambda: pid_gone(pid), 3, f"worker {pid} to exit after the client's RST")
    line = w.close_line(port)
    check(line.get("code") == "1006" and line.get("by") == "abnormal", f"close line {line}")
    w.check_clean()


@case("a client that half-closes TCP without a close frame: the worker exits")
def client_fin():
    w = srv()
    with w.raw() as c:
        c.handshake()
        pid = w.worker_of(c.local_port)
        c.sock.shutdown(socket.SHUT_WR)
        c.expect_eof(3)
    wait_until(lambda: pid_gone(pid), 3, f"worker {pid} to exit after the client's FIN")
    w.check_clean()


@case("a client that stops reading: SIGTERM to its worker still ends it (close timeout 500 ms)")
def stalled_reader_sigterm():
    with Wsd(env={"WSD_POOL_MIN": "1", "WSD_CLOSE_TIMEOUT_MS": "500"}) as w:
        c = w.raw()
        try:
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.handshake()
            pid = w.worker_of(c.local_port)
            c.sock.setblocking(False)
            big = frame(OP_BINARY, bytes(60000)) * 8
            sent = 0
            deadline = time.monotonic() + 3
            while sent < len(big) and time.monotonic() < deadline:  # fill every buffer
                try:
                    sent += c.sock.send(big[sent:])
                except BlockingIOError:
                    time.sleep(0.01)
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: pid_gone(pid), 5, f"worker {pid} (client not reading) to exit")
        finally:
            c.close()
        w.check_clean()


@case("the connections of other clients survive 5 worker SIGKILLs in a row")
async def serial_kills():
    w = srv()
    async with ws_connect(w, "/survivor") as keep:
        for i in range(5):
            async with ws_connect(w, f"/victim{i}") as v:
                await v.send("x")
                await recv_within(v)
                pid = w.worker_of(local_port(v))
                os.kill(pid, signal.SIGKILL)
                await expect_server_close(v, 2)
            await keep.send(f"round {i}")
            check(await recv_within(keep) == f"round {i}", "survivor echo")
    w.check_clean()


@case("teardown: pool back to WSD_POOL_MIN, no zombie, fd counts as at start, clean SIGTERM exit")
def teardown():
    srv.finish()


if __name__ == "__main__":
    run()
