#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The process tree: one acceptor, WSD_POOL_MIN idle workers, one worker process per connection
that exits after it, the pool refilled, no zombie, no fd leak; the per-connection log lines;
shutdown by SIGTERM/SIGINT with connections open."""

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import tempfile
import time

from wsdtest import (WSD_BIN, OP_CLOSE, OP_PING, OP_TEXT, Closed, Shared, Skip, Wsd, await_until, case,
                     check, close_payload, echo_once, expect_server_close, fd_count, local_port,
                     pid_gone, proc_fields, proc_status, recv_within, run, upgrade_request,
                     wait_until, ws_connect)

srv = Shared(env={"WSD_POOL_MIN": "3"})


@case("startup: one wsd-acceptor, one wsd-template and WSD_POOL_MIN=3 idle wsd-worker children "
      "of wsd")
def startup_tree():
    w = srv()
    kids = w.children()
    check(sorted(c for _, c, _ in kids) == ["wsd-acceptor", "wsd-template"] + ["wsd-worker"] * 3,
          f"children of wsd: {kids}")
    check(proc_status(w.pid)["Name"] == "wsd", f"the supervisor's comm is {proc_status(w.pid)['Name']!r}")


def policy(pid):
    """The scheduling policy of pid, with SCHED_RESET_ON_FORK as the kernel reports it."""
    return os.sched_getscheduler(pid), os.sched_getparam(pid).sched_priority


@case("startup: the supervisor runs at SCHED_FIFO 1 with SCHED_RESET_ON_FORK; the acceptor, the "
      "template and the workers, and a worker serving a connection, at SCHED_OTHER")
async def supervisor_fifo():
    w = srv()
    check(policy(w.pid) == (os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, 1),
          f"the supervisor's policy: {policy(w.pid)}")
    async with ws_connect(w) as ws:
        await ws.send("x")
        check(await recv_within(ws, 5) == "x", "no echo")
        others = {pid: (comm, policy(pid)) for pid, comm, st in w.children() if st != "Z"}
    check(len(others) >= 5 and all(p == (os.SCHED_OTHER, 0) for _, p in others.values()),
          f"the supervisor's children: {others}")


def limit_line(pid, name):
    """(soft, hard) of the /proc/PID/limits line that starts with name, as text."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                return tuple(line[len(name):].split()[:2])
    return None


@case("the real-time supervisor's guard: RLIMIT_RTTIME 200 ms, so the kernel sends SIGXCPU if it "
      "ever runs that long without blocking; SIGXCPU moves it to SCHED_OTHER, logged once, and "
      "wsd serves on; its children keep the default action for SIGXCPU")
def supervisor_rt_guard():
    with Wsd(env={"WSD_POOL_MIN": "2"}) as w:
        check(limit_line(w.pid, "Max realtime timeout") == ("200000", "unlimited"),
              f"RLIMIT_RTTIME: {limit_line(w.pid, 'Max realtime timeout')}")
        for pid, comm, st in w.children():
            fields = proc_fields(pid)
            if fields is None:  # reaped since the listing
                continue
            caught = int(fields["SigCgt"], 16)
            check(not caught >> (signal.SIGXCPU - 1) & 1, f"{comm} {pid} catches SIGXCPU")
        os.kill(w.pid, signal.SIGXCPU)  # what the kernel sends past the limit
        wait_until(lambda: policy(w.pid) == (os.SCHED_OTHER, 0), 3, "the default policy")
        lines = wait_until(lambda: [l for l in w.log_lines() if "at SCHED_FIFO without blocking"
                                    in l], 3, "the guard's log line")
        check(len(lines) == 1 and "200 ms" in lines[0], f"log: {lines}")
        echo_once(w, "served after the guard")
        w.check_clean()


@case("WSD_SUPERVISOR_SCHED=other: the supervisor keeps SCHED_OTHER (and no RLIMIT_RTTIME)")
def supervisor_other():
    with Wsd(env={"WSD_SUPERVISOR_SCHED": "other"}) as w:
        check(policy(w.pid) == (os.SCHED_OTHER, 0), f"the supervisor's policy: {policy(w.pid)}")
        check(limit_line(w.pid, "Max realtime timeout")[0] == "unlimited", "RLIMIT_RTTIME set")


def rtprio_limit(pid):
    """(soft, hard) RLIMIT_RTPRIO of pid, from /proc/PID/limits."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max realtime priority"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    return None


CAP_SYS_RESOURCE = 24


def has_cap(bit):
    return bool(int(proc_fields("self")["CapEff"], 16) >> bit & 1)


@contextlib.contextmanager
def without_sys_nice(rtprio):
    """A wrapper that runs wsd with RLIMIT_RTPRIO rtprio and (as root) without CAP_SYS_NICE,
    the way the systemd unit does (User=wsd, LimitRTPRIO=1): exec all the way, so the pid is
    wsd's. Removed when the block ends."""
    tmp = tempfile.mkdtemp(prefix="wsdtest-rt-")
    path = os.path.join(tmp, "wsd-rt")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec prlimit --rtprio={rtprio} setpriv --bounding-set -sys_nice "
                f"--inh-caps -sys_nice {WSD_BIN} \"$@\"\n")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@case("without CAP_SYS_NICE, RLIMIT_RTPRIO 1 (the systemd unit's way): the supervisor runs at "
      "SCHED_FIFO 1; every process below it has RLIMIT_RTPRIO 0, so none can take it up")
async def supervisor_fifo_by_rlimit():
    if resource.getrlimit(resource.RLIMIT_RTPRIO)[1] < 1 and not has_cap(CAP_SYS_RESOURCE):
        raise Skip("RLIMIT_RTPRIO is 0 here and cannot be raised (no CAP_SYS_RESOURCE)")
    with without_sys_nice(1) as exe, Wsd(exe=exe) as w:
        check(policy(w.pid) == (os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, 1),
              f"the supervisor's policy: {policy(w.pid)}")
        async with ws_connect(w) as ws:
            await ws.send("x")
            check(await recv_within(ws, 5) == "x", "no echo")
            kids = [(pid, comm) for pid, comm, st in w.children() if st != "Z"]
            limits = {f"{comm}/{pid}": rtprio_limit(pid) for pid, comm in kids}
        check(len(kids) >= 5 and all(l == (0, 0) for l in limits.values()),
              f"RLIMIT_RTPRIO below the supervisor: {limits}")


@case("without CAP_SYS_NICE and without RLIMIT_RTPRIO: one warning naming WSD_SUPERVISOR_SCHED, "
      "the default policy, and wsd serves")
def supervisor_fifo_refused():
    with without_sys_nice(0) as exe, Wsd(exe=exe) as w:
        check(policy(w.pid) == (os.SCHED_OTHER, 0), f"the supervisor's policy: {policy(w.pid)}")
        warned = [l for l in w.log_lines() if "SCHED_FIFO" in l]
        check(len(warned) == 1 and "WSD_SUPERVISOR_SCHED" in warned[0], f"warning lines: {warned}")
        echo_once(w, "served at the default policy")


@case("startup: the acceptor holds no fd of the supervisor's (its epoll, worker pidfds)")
def acceptor_fds():
    w = srv()
    fds = w._fd_list(w.acceptor())
    check("eventpoll" not in fds and "pidfd" not in fds, f"the acceptor's fds: {fds}")


@case("startup: WSD_POOL_MIN unset -> 4 idle workers")
def startup_default_pool():
    with Wsd(env={"WSD_POOL_MIN": None}) as w:
        check(len(w.workers()) == 4, f"workers {w.workers()}")


@case("8 concurrent connections are served by 8 distinct wsd-worker children of wsd")
async def concurrent_distinct_workers():
    w = srv()
    conns = [await ws_connect(w, f"/c{i}") for i in range(8)]
    pids = []
    try:
        for i, ws in enumerate(conns):
            await ws.send(f"hello {i}")
        for i, ws in enumerate(conns):
            check(await recv_within(ws) == f"hello {i}", f"echo on connection {i}")
            pids.append(w.worker_of(local_port(ws)))
        check(len(set(pids)) == 8, f"worker pids {pids} are not distinct")
        for p in pids:
            st = proc_status(p)
            check(st is not None and st["PPid"] == w.pid and st["Name"] == "wsd-worker",
                  f"worker {p}: {st}, want a wsd-worker child of {w.pid}")
        check(w.acceptor() not in pids and w.pid not in pids, "a connection served by a non-worker")
        # while busy, the pool is refilled: WSD_POOL_MIN idle workers besides the 8 busy ones
        await await_until(lambda: len(w.idle_workers()) == 3, 5,
                          f"3 idle workers while 8 are busy (workers {w.workers()}, busy {pids})")
    finally:
        for ws in conns:
            await asyncio.wait_for(ws.close(), 5)
    for p in pids:
        await await_until(lambda: pid_gone(p), 5, f"worker {p} to exit and be reaped after its connection")
    w.check_clean()


@case("5 sequential connections: 5 different workers, each gone after its connection")
def sequential_new_workers():
    w = srv()
    pids = []
    for i in range(5):
        with w.raw() as c:
            c.handshake(f"/seq{i}")
            pid = w.worker_of(c.local_port)
            check(pid not in pids, f"worker {pid} served a second connection")
            pids.append(pid)
            c.send_frame(OP_CLOSE, close_payload(1000))
            c.expect_close(1000, reply=False)
        wait_until(lambda: pid_gone(pid), 5, f"worker {pid} to exit and be reaped")
    w.check_clean()


# The libraries only the supervisor calls (sd_notify, socket activation, compiling the seccomp
# filter) and the ones they pull in: the template unmaps them before it clones any worker.
SUPERVISOR_ONLY_LIBS = ("libsystemd.so", "libseccomp.so", "libgcrypt.so", "libgpg-error.so",
                        "liblzma.so", "libzstd.so", "liblz4.so", "libcap.so")


def mapped_libs(pid, names):
    with open(f"/proc/{pid}/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted({p.rsplit("/", 1)[-1] for p in paths
                   if any(p.rsplit("/", 1)[-1].startswith(n) for n in names)})


@case("the template and its workers map none of the supervisor-only libraries (libsystemd, "
      "libseccomp and theirs); a worker cloned after that serves a connection")
def workers_without_supervisor_libs():
    w = srv()
    with open(f"/proc/{w.pid}/maps") as f:
        if "libasan" in f.read():
            raise Skip("the AddressSanitizer build keeps them (ASan reads every loaded object)")
    check(mapped_libs(w.pid, SUPERVISOR_ONLY_LIBS), "the supervisor itself maps none of them")
    template = [p for p, c, _ in w.children() if c == "wsd-template"]
    for pid in template + w.idle_workers():
        check(mapped_libs(pid, SUPERVISOR_ONLY_LIBS) == [],
              f"{pid} maps {mapped_libs(pid, SUPERVISOR_ONLY_LIBS)}")
        check(mapped_libs(pid, ("libc.so",)) == ["libc.so.6"], f"{pid} lost libc")
    echo_once(w, "served by a trimmed worker")
    w.check_clean()


def mappings(pid):
    """(start, end, name) of every mapping of pid"""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            out.append((start, end, fields[5] if len(fields) > 5 else ""))
    return out


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read()


@case("the template and its workers keep heap and stack next to the libraries (no brk heap, the "
      "kernel's stack unmapped: fewer page tables per worker); ps still shows wsd's command "
      "line; a worker so made serves a connection")
def workers_compact_layout():
    w = srv()
    if any("libasan" in name for _, _, name in mappings(w.pid)):
        raise Skip("the AddressSanitizer build keeps the kernel's layout")
    check(not any(name == "[heap]" for _, _, name in mappings(w.pid)),
          "the supervisor's malloc uses mmap, not brk")
    template = [p for p, c, _ in w.children() if c == "wsd-template"]
    for pid in template + w.idle_workers():
        maps = mappings(pid)
        check(not any(name == "[heap]" for _, _, name in maps), f"{pid} has a brk heap")
        stacks = [(a, b) for a, b, name in maps if name == "[stack]"]
        libc = min(a for a, _, name in maps if name.endswith("/libc.so.6"))
        check(len(stacks) == 1, f"{pid}: stacks {stacks}")
        # The kernel puts its stack at least 128 MB above the libraries (the stack rlimit's
        # gap, then up to 1 TB of randomisation); the moved one lies just below them.
        check(abs(libc - stacks[0][1]) < 64 << 20,
              f"{pid}: stack {stacks[0][0]:#x}-{stacks[0][1]:#x}, libc at {libc:#x}")
        check(cmdline(pid) == cmdline(w.pid),
              f"{pid}: cmdline {cmdline(pid)!r}, the supervisor's {cmdline(w.pid)!r}")
    echo_once(w, "served by a worker of the compact template")
    w.check_clean()


def code_mappings(pid):
    """{(perms, file): (Rss kB, Anonymous kB)} of pid's read-only mappings of wsd and libc."""
    out, key = {}, None
    wsd = os.path.realpath(WSD_BIN)
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
                path = fields[5] if len(fields) > 5 else ""
                mine = (path == wsd or path.endswith("/libc.so.6")) and "w" not in fields[1]
                key = (fields[1], path.rsplit("/", 1)[-1]) if mine else None
                if key:
                    out.setdefault(key, (0, 0))
            elif key and fields[0] in ("Rss:", "Anonymous:"):
                rss, anon = out[key]
                out[key] = (rss + int(fields[1]), anon) if fields[0] == "Rss:" else \
                    (rss, anon + int(fields[1]))
    return out


def started(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


@case("a worker starts with the template's page-table entries for wsd's and libc's code and "
      "constants (each code mapping of the template holds one private page, so the clone copies "
      "them), and serves a connection")
def workers_share_code_ptes():
    w = srv()
    echo_once(w, "the template has run its whole loop")
    template = [p for p, c, _ in w.children() if c == "wsd-template"][0]
    wait_until(lambda: len(w.idle_workers()) == w.pool_min, 5, "the pool to be refilled")
    newest = max(w.idle_workers(), key=started)
    t, n = code_mappings(template), code_mappings(newest)
    check(len([k for k in t if k[0] == "r-xp"]) == 2, f"no code mapping of wsd and libc: {t}")
    for key, (rss, anon) in t.items():
        if key[0] == "r-xp":
            check(anon == 4, f"the template's {key}: {anon} kB private, not one page")
        # Faultaround maps up to 64 kB around a fault: the template may have faulted once more
        # since the newest worker's clone.
        check(key in n and n[key][0] >= rss - 64,
              f"worker {newest} maps {n.get(key, (0, 0))[0]} kB of {key}, the template {rss} kB")
    echo_once(w, "served by a worker with the template's code mapped")
    w.check_clean()


@case("WSD_POOL_MIN=0: a connection is still served; afterwards no worker is left")
def pool_min_zero():
    with Wsd(env={"WSD_POOL_MIN": "0"}) as w:
        check(w.workers() == [], f"idle workers with WSD_POOL_MIN=0: {w.workers()}")
        echo_once(w, "served on demand")
        w.check_clean()


@case("the open and close log lines carry conn, pid, peer, path and exact traffic counts")
async def log_lines():
    w = srv()
    msgs = ["a" * 10, b"\x00" * 300, "ü" * 100]  # 10 + 300 + 200 bytes
    async with ws_connect(w, "/log/path?q=1") as ws:
        port = local_port(ws)
        for m in msgs:
            await ws.send(m)
            check(await recv_within(ws) == m, "echo")
        o = w.open_line(port)
    c = w.close_line(port)
    check(o["peer"] == f"127.0.0.1:{port}", f"open peer {o}")
    check(o["path"].startswith("/log/path"), f"open path {o}")
    check(o["conn"] == c["conn"] and o["pid"] == c["pid"] and o["peer"] == c["peer"],
          f"open {o} and close {c} disagree")
    want = {"in_msgs": "3", "in_bytes": "510", "out_msgs": "3", "out_bytes": "510", "code": "1000",
            "by": "client"}
    got = {k: c.get(k) for k in want}
    check(got == want, f"close line fields {got}, want {want}")
    check(c.get("duration_ms", "").isdigit(), f"duration_ms {c.get('duration_ms')!r}")


@case("40 connect/echo/close cycles: no zombie, no fd leak, pool at WSD_POOL_MIN")
def churn():
    w = srv()
    for i in range(40):
        echo_once(w, f"cycle {i}")
    w.check_clean()


@case("WSD_WORKER_REUSE: 30 connections in turn on a few workers, whose fd counts stay put; the "
      "heartbeat still pings on a reused worker")
def reuse_workers():
    with Wsd(env={"WSD_WORKER_REUSE": "1000", "WSD_POOL_MIN": "1",
                  "WSD_PING_INTERVAL_MS": "300"}) as w:
        fds = {}
        for i in range(30):
            with w.raw() as c:
                c.handshake(f"/reuse/{i}")
                c.send_frame(OP_TEXT, f"m{i}".encode())
                f = c.recv_frame()
                check((f.opcode, f.payload) == (OP_TEXT, f"m{i}".encode()), f"echo {i}: {f}")
                port, pid = c.local_port, w.worker_of(c.local_port)
                c.send_frame(OP_CLOSE, close_payload(1000))
                c.expect_close(1000, reply=False)
            w.close_line(port)
            wait_until(lambda: pid not in w.busy_pids(), 3, f"worker {pid} idle again")
            fds.setdefault(pid, []).append(fd_count(pid))
        check(len(fds) <= 3, f"30 connections on {len(fds)} workers with WSD_WORKER_REUSE")
        for pid, counts in fds.items():
            check(len(set(counts[1:])) <= 1, f"worker {pid}'s fd counts moved: {counts}")
        with w.raw() as c:
            c.handshake("/reuse/ping")
            f = c.recv_frame(2)
            check(f.opcode == OP_PING, f"want a heartbeat ping, got {f}")


@case("20 clients that vanish with a TCP RST after the upgrade: all workers exit, no leak")
def churn_rst():
    import socket
    import struct
    w = srv()
    for i in range(20):
        c = w.raw()
        c.handshake()
        pid = w.worker_of(c.local_port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        wait_until(lambda: pid_gone(pid), 5, f"worker {pid} to exit after its client's RST")
    w.check_clean()


def _shutdown_case(sig):
    async def body():
        w = Wsd(env={"WSD_POOL_MIN": "2"}).start()
        try:
            conns = [await ws_connect(w, f"/shutdown{i}") for i in range(3)]
            for ws in conns:
                await ws.send("x")
                await recv_within(ws)
            pids = [w.worker_of(local_port(ws)) for ws in conns]
            w.send_signal(sig)
            for ws in conns:
                e = await expect_server_close(ws, 8)
                check(e.rcvd is not None and e.rcvd.code == 1001, f"want close 1001, got {e!r}")
        except BaseException:
            w.kill()
            raise
        w.stop(sig=sig)  # the signal again is harmless; checks exit status 0 and leftovers
        for p in pids:
            check(pid_gone(p), f"worker {p} still exists after wsd exited")

    return body


case("SIGTERM with 3 open connections: each gets close 1001, wsd exits 0, nothing left")(
    _shutdown_case(signal.SIGTERM))
case("SIGINT with 3 open connections: each gets close 1001, wsd exits 0, nothing left")(
    _shutdown_case(signal.SIGINT))


@case("SIGTERM with a client that never answers the close: wsd exits 0 within the grace + 3 s")
def shutdown_stubborn_client():
    w = Wsd(env={"WSD_SHUTDOWN_GRACE_MS": "1000", "WSD_CLOSE_TIMEOUT_MS": "5000"}).start()
    try:
        with w.raw(timeout=10) as c:
            c.handshake()
            w.worker_of(c.local_port)
            t0 = time.monotonic()
            w.send_signal(signal.SIGTERM)
            w.proc.wait(1 + 3)
            took = time.monotonic() - t0
            f = c.recv_frame(timeout=1)  # sent before wsd exited
            check(f.opcode == OP_CLOSE and f.close_code() == 1001, f"want close 1001, got {f!r}")
            c.expect_eof(2)
    except BaseException:
        w.kill()
        raise
    w.stop()
    check(took <= 4, f"wsd took {took:.2f} s to exit")


@case("SIGTERM with a half-sent handshake and an idle TCP client: wsd exits 0, both sockets end")
def shutdown_mid_handshake():
    w = Wsd().start()
    try:
        a, b = w.raw(), w.raw()
        with a, b:
            a.send(upgrade_request()[:30])
            time.sleep(0.1)
            w.send_signal(signal.SIGTERM)
            w.proc.wait(5)
            for c in (a, b):
                try:
                    c.read_http(timeout=2)  # a 503 or similar is fine; the close is what counts
                    c.expect_eof(2)
                except Closed:
                    pass
    except BaseException:
        w.kill()
        raise
    w.stop()


@case("SIGTERM right after startup: exit status 0, nothing left")
def shutdown_idle():
    w = Wsd().start()
    w.stop()


@case("teardown: pool back to WSD_POOL_MIN, no zombie, fd counts as at start, clean SIGTERM exit")
def teardown():
    srv.finish()


if __name__ == "__main__":
    run()
