#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""wsbench smoke test (a couple of seconds; no figure is asserted, performance lives in bench/):
wsbench's modes run against the real wsd and end cleanly, every echoed payload is verified (a
server that corrupts one byte of one echo stops the run with exit 2 and says where), kill closes
each connection through the control socket with the asked code, and the process-creation probe
reaps every child it makes. Each case checks wsd's process table and fds afterwards."""

import asyncio
import json
import os
import socket
import subprocess
import threading
import time

import websockets

from wsdtest import SLOW, WSD_BIN, Skip, Wsd, case, check, proc_fields, run, wait_until, wsctl

WSBENCH = os.path.join(os.path.dirname(WSD_BIN), "bench", "wsbench")


def wsbench(*args, timeout=20, env=None):
    """Run wsbench: (exit status, its JSON line as a dict or None, stdout, stderr)."""
    check(os.access(WSBENCH, os.X_OK), f"{WSBENCH} is missing: make {WSBENCH}")
    p = subprocess.run([WSBENCH] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout * SLOW, env=env)
    js = [line for line in p.stdout.splitlines() if line.startswith("{")]
    return p.returncode, json.loads(js[-1]) if js else None, p.stdout, p.stderr


def expect_clean_run(rc, res, out, err, mode):
    check(rc == 0, f"wsbench {mode} exited {rc}:\n{out}\n{err}")
    check(res is not None and res["mode"] == mode, f"no JSON line for {mode}:\n{out}")
    check(any(line.startswith(f"wsbench {mode} ") for line in out.splitlines()),
          f"no human line for {mode}:\n{out}")
    check(res["errors"] == 0 and res["server_closes"] == 0 and res["close_timeouts"] == 0,
          f"wsbench {mode} counted failures: {res}")
    check(res["count"] > 0, f"wsbench {mode} did no work: {res}")


@case("echo, conn and churn against wsd: clean runs, every echo verified")
def echo_conn_churn():
    with Wsd() as w:
        for mode, extra in (("echo", ["-c", 4, "-p", 4, "-s", 300]), ("conn", ["-c", 4]),
                            ("churn", ["-c", 4, "-s", 40]), ("echo", ["-c", 2, "-s", 70000,
                                                                      "--binary"])):
            rc, res, out, err = wsbench(mode, "--url", w.url(), "-d", 0.4, *extra)
            expect_clean_run(rc, res, out, err, mode)
            if mode != "conn":  # every message counted was compared byte for byte
                check(res["lat_us"]["count"] == res["count"], f"latency samples != count: {res}")
        w.check_clean()


@case("a server that corrupts one byte of one echo makes wsbench fail loudly (exit 2)")
async def corrupt_echo():
    seen = 0

    async def handler(ws, path=None):
        nonlocal seen
        async for m in ws:
            seen += 1
            if seen == 3:  # a few good echoes first: the check is on every message
                m = m[:17] + ("x" if m[17] != "x" else "y") + m[18:]
            await ws.send(m)

    async with websockets.serve(handler, "127.0.0.1", 0, compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        p = await asyncio.create_subprocess_exec(
            WSBENCH, "echo", "--url", f"ws://127.0.0.1:{port}/", "-c", "1", "-s", "64", "-d", "2",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(p.communicate(), 10 * SLOW)
    err = err.decode()
    check(p.returncode == 2, f"wsbench exited {p.returncode}, not 2:\n{out.decode()}\n{err}")
    check("FATAL" in err and "differs at byte 17" in err, f"no clear diagnosis:\n{err}")
    check(not out.strip(), f"a corrupted run still printed results:\n{out.decode()}")


@case("kill: each of 20 connections closed through the control socket with the asked code; "
      "with --warm each first echoes a message (its worker then waits in recv())")
def kill_mode():
    for warm in (False, True):
        with Wsd(env={"WSD_MAX_CONNS_PER_IP": "0"}) as w:
            ctl = os.path.join(w.tmp, "ctl.sock")
            rc, res, out, err = wsbench("kill", "--url", w.url(), "-n", 20, "--control", ctl,
                                        "--code", 4001, "--settle", 0.2,
                                        *(["--warm"] if warm else []))
            expect_clean_run(rc, res, out, err, "kill")
            check(res["count"] == 20 and res["lat_us"]["count"] == 20 and res["unmapped"] == 0
                  and res["warm"] == warm, f"not every connection was killed and timed: {res}")
            # wsd logs a termination when it reaps the worker, which may be after wsbench is done
            wait_until(lambda: len([l for l in w.log_lines()
                                    if "cause=operator code=4001" in l]) == 20,
                       5, "wsd to log 20 operator kills with code 4001")
            echoed = [l for l in w.log_lines() if ": close conn=" in l and " in_msgs=1 " in l]
            check(len(echoed) == (20 if warm else 0),
                  f"{len(echoed)} connections echoed a message first (warm={warm})")
            w.check_clean()


@case("kill: a control socket that does not answer stops the run (exit 2), timing nothing")
def kill_no_control():
    with Wsd() as w:
        ctl = os.path.join(w.tmp, "ctl.sock")
        rc, res, out, err = wsbench("kill", "--url", w.url(), "-n", 2, "--control",
                                    ctl + ".missing")
        check(rc == 2 and "list failed" in err, f"exit {rc}:\n{out}\n{err}")
        w.check_clean()


@case("kill: a kill request the control socket never answers (nor acts on) is an error after "
      "--timeout; the run goes on to the next and ends (exit 1)")
def kill_unanswered():
    with Wsd(env={"WSD_MAX_CONNS_PER_IP": "0"}) as w:
        real = os.path.join(w.tmp, "ctl.sock")
        fake = os.path.join(w.tmp, "silent.sock")
        held = []  # kill requests, left open and unanswered

        def serve(listener):
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # closed: the case is over
                line = conn.recv(256)
                if not line.startswith(b"list"):
                    held.append(conn)
                    continue
                with socket.socket(socket.AF_UNIX) as up:  # wsd answers the list itself
                    up.connect(real)
                    up.sendall(line)
                    while chunk := up.recv(65536):
                        conn.sendall(chunk)
                conn.close()

        with socket.socket(socket.AF_UNIX) as listener:
            listener.bind(fake)
            listener.listen(8)
            threading.Thread(target=serve, args=(listener,), daemon=True).start()
            rc, res, out, err = wsbench("kill", "--url", w.url(), "-n", 2, "--control", fake,
                                        "--settle", 0.2, "--timeout", 1)
            listener.shutdown(socket.SHUT_RDWR)
        for conn in held:
            conn.close()
        check(rc == 1 and len(held) == 2, f"exit {rc}, {len(held)} kills asked:\n{out}\n{err}")
        check(err.count("no answer to the kill of wsd conn=") == 2,
              f"each kill should be one error, naming what did not come:\n{err}")
        check(res is not None and res["lat_us"]["count"] == 0, f"a kill was timed: {res}")
        w.check_clean()


@case("spawn: the process-creation probe reaps every child it creates")
def spawn_probe():
    rc, res, out, err = wsbench("spawn", "-c", 3, "-d", 0.3)
    expect_clean_run(rc, res, out, err, "spawn")
    check(res["lat_us"]["count"] == res["count"], f"unreaped or untimed children: {res}")


@case("switch: the context-switch probe passes the token around the whole ring, processes "
      "and threads, and leaves no task behind")
def switch_probe():
    for extra in ([], ["--threads"]):
        mark = f"WSBENCH_SWITCH_TEST={os.getpid()}-{len(extra)}"
        env = dict(os.environ, WSBENCH_SWITCH_TEST=mark.split("=")[1])
        rc, res, out, err = wsbench("switch", "-c", 40, "-d", 0.3, *extra, env=env)
        expect_clean_run(rc, res, out, err, "switch")
        check(res["threads"] == bool(extra), f"threads flag not reported: {res}")
        # The token makes whole laps: every count is a multiple of the ring's size.
        check(res["count"] % 40 == 0 and res["lat_us"]["count"] == res["count"] // 40,
              f"hops are not whole laps of 40: {res}")
        check(f"c=40 {'threads' if extra else 'processes'}" in out, f"human line:\n{out}")
        left = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if mark.encode() in f.read().split(b"\0"):
                        left.append(pid)
            except OSError:
                pass  # gone meanwhile
        check(not left, f"ring tasks left running after wsbench switch {extra}: {left}")


def context_switches(pid):
    """Voluntary and involuntary, since pid started."""
    fields = proc_fields(pid)
    return int(fields["voluntary_ctxt_switches"]) + int(fields["nonvoluntary_ctxt_switches"])


@case("a burst of short connections: the supervisor reads its workers' reports in batches "
      "(well under one wakeup a connection), and counts every connection")
def report_batching():
    # Each connection sends the supervisor two reports (taken, ended). Read as they come, that
    # was two wakeups of the supervisor a connection (four context switches, since it runs at
    # SCHED_FIFO and preempts the sender); paced, at most about two per millisecond.
    with Wsd(env={"WSD_WORKER_REUSE": "1000000", "WSD_POOL_MIN": "16"}) as w:
        before, t0 = context_switches(w.pid), time.monotonic()
        rc, res, out, err = wsbench("conn", "--url", w.url(), "-c", 16, "-d", 1.5)
        elapsed_ms = (time.monotonic() - t0) * 1000
        switches = context_switches(w.pid) - before
        expect_clean_run(rc, res, out, err, "conn")
        n = res["count"]
        if n < 3 * elapsed_ms:
            raise Skip(f"{n} connections in {elapsed_ms:.0f} ms: too slow a machine to tell "
                       "batches from one wakeup each")
        check(switches < n / 2, f"the supervisor switched {switches} times for {n} connections")
        # wsbench counts the handshakes done in its time (after a warm-up); wsd saw more.
        def settled():
            st = json.loads(wsctl(w, "stats", "--json")[1])
            return st if st["open"] == 0 and st["closed"] == st["accepted"] else None
        st = wait_until(settled, 5, "every accepted connection to count as closed")
        check(st["closed"] >= n and st["closed_normally"] == st["closed"],
              f"stats after {n} connections: {st}")
        # Workers that serve again stay, more than WSD_POOL_MIN; the rest of check_clean(): no
        # zombie, and the supervisor holds its fds at start plus one pidfd per extra worker.
        # wsd's exit (the end of this block) checks that none of its processes outlives it.
        w.wait_no_zombies()
        want = lambda: w.fd_baseline + len(w.workers()) - w.pool_min
        wait_until(lambda: w.fd_count() == want(), 5,
                   f"wsd's fd count to be {want()} (now {w.fd_count()})")


run()
