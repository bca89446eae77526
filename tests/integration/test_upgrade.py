#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SIGUSR2, the zero-downtime upgrade: the binary now on disk starts with the listening and
control sockets; once it is ready the old generation stops accepting, drains (connections run
until they end, or get 1001 at WSD_DRAIN_TIMEOUT_MS) and exits. Under load no handshake is
refused and no open connection drops early; afterwards only the new generation remains. A new
binary that exits, has a bad configuration or hangs leaves the old one serving."""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from wsdtest import (SLOW, WSD_BIN, Fail, NotifySocket, Wsd, case, check, echo_once,
                     marked_pids, proc_status, run, tcp_listener, wait_until, ws_connect)

WSCTL = os.path.join(os.path.dirname(WSD_BIN), "wsctl")
# A churn or held connection waits this long for its handshake or echo: not a latency bound (the
# 2 cores are shared), only a cap on a connection that nobody serves.
PATIENCE = 15 * SLOW
READY_LINE = re.compile(r"upgrade: new wsd pid=(\d+) is ready and accepting")


class Adopted:
    """Popen's interface for a process that became this one's child by reparenting (the test
    process is a child subreaper: the new generation is handed to it when the old one exits)."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            p, st = os.waitpid(self.pid, os.WNOHANG)
            if p:
                self.returncode = os.waitstatus_to_exitcode(st)
        return self.returncode

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        os.kill(self.pid, sig)


class Binary:
    """A copy of wsd in a temporary directory, which a case replaces the way a package upgrade
    does (a new file renamed over the old name), while the running one keeps its inode."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wsdbin-")
        self.path = os.path.join(self.dir, "wsd")
        self.put_binary()

    def _replace(self, write):
        tmp = self.path + ".new"
        write(tmp)
        os.chmod(tmp, 0o755)
        os.rename(tmp, self.path)

    def put_binary(self):
        self._replace(lambda p: shutil.copyfile(WSD_BIN, p))

    def put_script(self, body):
        self._replace(lambda p: open(p, "w").write("#!/bin/sh\n" + body + "\n"))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def new_generation(w, timeout=10):
    """The pid of the new generation, from the old one's `is ready and accepting` line."""
    m = wait_until(lambda: READY_LINE.search(w.log()), timeout * SLOW,
                   "the old wsd's 'upgrade: new wsd pid=N is ready' line")
    return int(m.group(1))


def wait_exit(w, timeout):
    try:
        w.proc.wait(timeout * SLOW)
    except subprocess.TimeoutExpired:
        raise Fail(f"the old wsd pid {w.pid} still runs {timeout * SLOW} s after the upgrade:\n"
                   + w.log_tail()) from None
    check(w.proc.returncode == 0, f"the old wsd exited with {w.proc.returncode}:\n{w.log_tail()}")


def adopt(w, new_pid):
    """Point w at the new generation (after the old one exited) and check that only it is
    left: every live process of this instance is the new wsd or its child. A process that
    vanishes between the listing and the look at it is not counted (it has just exited)."""
    check(proc_status(w.pid) is None, f"the old wsd pid {w.pid} still exists")
    old = w.pid
    w.pid, w.proc = new_pid, Adopted(new_pid)
    for pid in marked_pids(w.marker):
        if pid == os.getpid():
            continue
        st = proc_status(pid)
        if st is None or pid == new_pid:
            continue
        check(st["PPid"] == new_pid, f"pid {pid} ({st['Name']}, parent {st['PPid']}) is not of "
              f"the new generation {new_pid} (old was {old})")
    w.wait_idle()
    w.fd_baseline = w.fd_count()
    w.baseline_acceptor()


def wsctl(w, *args):
    r = subprocess.run([WSCTL, "-s", os.path.join(w.tmp, "ctl.sock"), *args],
                       capture_output=True, text=True, timeout=10)
    return r.returncode, r.stdout, r.stderr


def log_time(line):
    """Wall-clock seconds of a log line's ISO timestamp."""
    import datetime
    ts = line.split(" ", 1)[0]
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


async def all_opened(recs, timeout=5):
    """Wait (bounded) until every holder's connection is open."""
    deadline = time.monotonic() + timeout * SLOW
    while not all(r.get("opened") for r in recs):
        if time.monotonic() > deadline:
            raise Fail(f"holders did not open within {timeout * SLOW} s: {recs}")
        await asyncio.sleep(0.02)


async def churned(stats, n, timeout=PATIENCE):
    """Wait (bounded) until the churn client has completed n connections in all."""
    deadline = time.monotonic() + timeout
    while stats["ok"] < n:
        if time.monotonic() > deadline or stats["errors"]:
            raise Fail(f"churn: {stats['ok']} of {n} connections, errors {stats['errors'][:5]}")
        await asyncio.sleep(0.02)


async def churn(w, stop, stats):
    """Open, echo and close connections back to back until stop is set; every failure (a
    refused handshake, a reset, a missing echo) is recorded."""
    while not stop.is_set():
        try:
            async with ws_connect(w, open_timeout=PATIENCE) as c:
                await c.send("churn")
                if await asyncio.wait_for(c.recv(), PATIENCE) != "churn":
                    stats["errors"].append("wrong echo")
            stats["ok"] += 1
        except Exception as e:  # noqa: BLE001 -- any failure counts
            stats["errors"].append(repr(e))


async def hold(w, stop, rec):
    """One connection that echoes every 20 ms until stop is set, then closes with 1000. If the
    server closes it first, rec gets the code and the wall time."""
    import websockets
    async with ws_connect(w, open_timeout=PATIENCE) as c:
        rec["opened"] = True
        try:
            n = 0
            while not stop.is_set():
                n += 1
                await c.send(f"hold {n}")
                if await asyncio.wait_for(c.recv(), PATIENCE) != f"hold {n}":
                    rec["errors"] = f"wrong echo at {n}"
                await asyncio.sleep(0.02)
            rec["echoes"] = n
        except websockets.ConnectionClosed as e:
            rec["closed_by_server"] = (e.code, time.time())


@case("SIGUSR2 under load: no handshake refused, held connections drain, only the new "
      "generation is left, control socket and MAINPID move", timeout=60)
async def upgrade_under_load():
    b = Binary()
    ns = NotifySocket()
    w = Wsd(exe=b.path, env={"WSD_POOL_MIN": "2", "WSD_DRAIN_TIMEOUT_MS": "20000",
                             "NOTIFY_SOCKET": ns.path}).start()
    try:
        ino = os.stat(b.path).st_ino
        b.put_binary()  # the "upgrade": a new file at the same path
        check(os.stat(b.path).st_ino != ino, "the binary was not replaced")
        stop_churn, stop_hold = asyncio.Event(), asyncio.Event()
        stats = {"ok": 0, "errors": []}
        recs = [{} for _ in range(4)]
        holders = [asyncio.create_task(hold(w, stop_hold, r)) for r in recs]
        await all_opened(recs)
        churner = asyncio.create_task(churn(w, stop_churn, stats))
        await churned(stats, 5)
        before = stats["ok"]
        old_pid = w.pid
        loop = asyncio.get_running_loop()  # blocking waits go to a thread: the clients go on
        w.send_signal(signal.SIGUSR2)
        new_pid = await loop.run_in_executor(None, new_generation, w)
        check(os.readlink(f"/proc/{new_pid}/exe") == b.path,
              f"the new generation runs {os.readlink(f'/proc/{new_pid}/exe')}, not {b.path}")
        m = await loop.run_in_executor(None, lambda: ns.wait_for("MAINPID", value=str(new_pid)))
        check(m.get("_PID") == str(old_pid), f"MAINPID= came from pid {m.get('_PID')}, not the "
              f"old generation {old_pid}")
        # the old one drains: its connections still echo; new ones reach the new generation
        await asyncio.sleep(0.5)
        rc, out, err = await loop.run_in_executor(None, wsctl, w, "stats")
        check(rc == 0, f"wsctl on the handed-over control socket: {rc} {err}")
        stop_hold.set()
        await asyncio.gather(*holders)
        await loop.run_in_executor(None, wait_exit, w, 10)
        await churned(stats, stats["ok"] + 5)  # against the new generation alone
        stop_churn.set()
        await churner
        check(not stats["errors"], f"{len(stats['errors'])} churn failures: {stats['errors'][:5]}")
        check(before > 0 and stats["ok"] > before, f"churn: {before} before, {stats['ok']} in all")
        for r in recs:
            check("closed_by_server" not in r and "errors" not in r and r.get("echoes", 0) > 10,
                  f"a held connection was disturbed: {r}")
        check("upgrade failed" not in w.log(), w.log_tail())
        print(f"# churn: {before} handshakes before SIGUSR2, {stats['ok']} in all, 0 failed",
              flush=True)
        adopt(w, new_pid)
        check(proc_status(old_pid) is None, f"the old wsd pid {old_pid} is still there")
        # systemd takes the new one's messages once MAINPID is moved: STATUS, but no second READY
        def from_new():
            return [m for m in ns.messages() if m.get("_PID") == str(new_pid)]
        wait_until(lambda: any("STATUS" in m for m in from_new()), 3 * SLOW,
                   "a STATUS= from the new generation")
        check(not any("READY" in m for m in from_new()),
              f"the new generation sent READY=1: {from_new()}")
        echo_once(w)
        # the new generation answers on the same control socket path
        wait_until(lambda: "\nopen: 0\n" in wsctl(w, "stats")[1], 5 * SLOW,
                   f"wsctl stats from the new generation: {wsctl(w, 'stats')}")
        w.check_clean()
        w.stop()
    finally:
        if not w.stopped:  # whichever generation is left, found by the instance's marker
            w.kill()
        ns.close()
        b.close()


@case("drain timeout: connections still open then get 1001, not before WSD_DRAIN_TIMEOUT_MS",
      timeout=40)
async def drain_timeout():
    # longer than the 5 s strays sweep: the draining generation sweeps at least once while the
    # new one is its child, and must leave it alone (it holds its pidfd)
    drain_ms = 6000
    w = Wsd(env={"WSD_DRAIN_TIMEOUT_MS": str(drain_ms), "WSD_POOL_MIN": "1"}).start()
    try:
        stop = asyncio.Event()
        recs = [{} for _ in range(3)]
        holders = [asyncio.create_task(hold(w, stop, r)) for r in recs]
        await all_opened(recs)
        w.send_signal(signal.SIGUSR2)
        loop = asyncio.get_running_loop()
        new_pid = await loop.run_in_executor(None, new_generation, w)
        handed = log_time(next(l for l in w.log_lines() if READY_LINE.search(l)))
        await asyncio.wait_for(asyncio.gather(*holders), (drain_ms / 1000 + 10) * SLOW)
        for r in recs:
            check("closed_by_server" in r, f"a held connection was not closed by the old wsd: {r}")
            code, at = r["closed_by_server"]
            check(code == 1001, f"close code {code}, want 1001")
            check(at - handed >= drain_ms / 1000 - 0.01,
                  f"closed {at - handed:.3f} s after the handover, before the drain timeout")
        await loop.run_in_executor(None, wait_exit, w, 10)
        check("drain timeout" in w.log(), w.log_tail())
        adopt(w, new_pid)
        echo_once(w)
        w.stop()
    finally:
        if not w.stopped:  # whichever generation is left, found by the instance's marker
            w.kill()


def expect_failed_upgrade(w, b, script, why, timeout=10):
    """Replace the binary with script, SIGUSR2, and check the old wsd logs why and still serves
    with the same acceptor; the failed process is gone (reaped by wsd)."""
    b.put_script(script)
    acc = w.acceptor()
    n = len(w.lines_with("upgrade"))
    w.send_signal(signal.SIGUSR2)
    line = wait_until(lambda: next((l for l in w.lines_with("upgrade")[n:] if "failed" in l), None),
                      timeout * SLOW, f"an 'upgrade failed' line ({why})")
    check(why in line, f"want {why!r} in {line!r}")
    pid = int(re.search(r"pid=(\d+)", line).group(1))
    wait_until(lambda: proc_status(pid) is None, 3 * SLOW, f"the failed wsd pid {pid} to be reaped")
    check(w.running() and w.acceptor() == acc, "the old wsd stopped serving:\n" + w.log_tail())
    echo_once(w)
    rc, out, err = wsctl(w, "stats")
    check(rc == 0, f"wsctl after a failed upgrade: {rc} {err}")
    return line


@case("failed upgrades leave the old wsd serving: the new exits, has a bad config, hangs; "
      "then a good binary takes over", timeout=60)
def failed_upgrades():
    b = Binary()
    w = Wsd(exe=b.path, env={"WSD_UPGRADE_TIMEOUT_MS": "500", "WSD_POOL_MIN": "2"}).start()
    try:
        expect_failed_upgrade(w, b, "exit 1", "exited with status 1 before it was ready")
        expect_failed_upgrade(w, b, f'WSD_POOL_MIN=abc exec "{WSD_BIN}" "$@"',
                              "exited with status 2 before it was ready")
        check(any("invalid WSD_POOL_MIN" in l for l in w.log_lines()),
              "the new generation's own error line is not in the log")
        # a hang: it holds the sockets and never says READY; a second SIGUSR2 meanwhile waits
        b.put_script("exec sleep 60")
        n = len(w.lines_with("upgrade"))
        started = len(w.lines_with("SIGUSR2:"))
        w.send_signal(signal.SIGUSR2)
        wait_until(lambda: len(w.lines_with("SIGUSR2:")) > started, 3 * SLOW,
                   "the upgrade to start")
        w.send_signal(signal.SIGUSR2)
        line = wait_until(lambda: next((l for l in w.lines_with("upgrade")[n:] if "not ready" in l),
                                       None), 5 * SLOW, "the 'not ready after' line")
        check("not ready after 500 ms" in line, line)
        wait_until(lambda: "killed by signal 9" in w.log(), 3 * SLOW, "the hung one to be reaped")
        check(any("already under way" in l for l in w.log_lines()),
              "a second SIGUSR2 during an upgrade was not refused")
        echo_once(w)
        # and a good binary still upgrades
        b.put_binary()
        w.send_signal(signal.SIGUSR2)
        new_pid = new_generation(w)
        wait_exit(w, 10)
        adopt(w, new_pid)
        echo_once(w)
        w.stop()
    finally:
        if not w.stopped:  # whichever generation is left, found by the instance's marker
            w.kill()
        b.close()


@case("socket-activated with a watchdog: after SIGUSR2 the new generation feeds WATCHDOG=1 "
      "and serves the passed socket")
def upgrade_socket_activated_watchdog():
    with NotifySocket() as ns, tcp_listener() as ls:
        # WATCHDOG_PID names the first wsd, as systemd sets it for the main process
        w = Wsd(listen_fds=[(ls.fileno(), "ws")],
                env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"}).start()
        try:
            old_pid = w.pid
            ns.wait_for("WATCHDOG")
            w.send_signal(signal.SIGUSR2)
            new_pid = new_generation(w)
            wait_exit(w, 10)
            adopt(w, new_pid)
            check(w.port == ls.getsockname()[1], "")
            wait_until(lambda: sum("WATCHDOG" in m and m.get("_PID") == str(new_pid)
                                   for m in ns.messages()) >= 2, 3 * SLOW,
                       "two WATCHDOG=1 from the new generation")
            check(all(m.get("_PID") in (str(old_pid), str(new_pid)) for m in ns.messages()),
                  f"a notification from another process: {ns.messages()}")
            echo_once(w)
            w.stop()
        finally:
            if not w.stopped:
                w.kill()


@case("WSD_METRICS_LISTEN moves to the new generation: /metrics answers on the same port "
      "throughout")
def metrics_listener_moves():
    import http.client
    import threading

    def scrape(port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5 * SLOW)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    w = Wsd(env={"WSD_METRICS_LISTEN": "127.0.0.1:0", "WSD_POOL_MIN": "1"}).start()
    try:
        port = int(wait_until(lambda: re.search(r"metrics on http://127\.0\.0\.1:(\d+)/", w.log()),
                              5 * SLOW, "the 'metrics on' line").group(1))
        check(scrape(port)[0] == 200, "no /metrics before the upgrade")
        stop, results = threading.Event(), []

        def poll():
            while not stop.is_set():
                try:
                    results.append(scrape(port)[0])
                except OSError as e:
                    results.append(repr(e))
                time.sleep(0.01)

        t = threading.Thread(target=poll)
        t.start()
        try:
            w.send_signal(signal.SIGUSR2)
            new_pid = new_generation(w)
            wait_exit(w, 10)
            adopt(w, new_pid)
            wait_until(lambda: len(results) > 5, 5 * SLOW, "scrapes after the upgrade")
        finally:
            stop.set()
            t.join(10)
        bad = [r for r in results if r != 200]
        check(not bad, f"{len(bad)} of {len(results)} scrapes failed across the upgrade: {bad[:5]}")
        status, body = scrape(port)
        check(status == 200 and b"wsd_" in body, f"/metrics from the new generation: {status}")
        check(any("wsd-metrics" == c for _, c, _ in w.children()),
              f"no wsd-metrics child of the new generation: {w.children()}")
        w.stop()
    finally:
        if not w.stopped:
            w.kill()


@case("SIGTERM while the new generation starts: both stop, nothing is left")
def stop_during_upgrade():
    b = Binary()
    w = Wsd(exe=b.path, env={"WSD_UPGRADE_TIMEOUT_MS": "30000", "WSD_POOL_MIN": "1"}).start()
    try:
        b.put_script("exec sleep 60")
        w.send_signal(signal.SIGUSR2)
        wait_until(lambda: any("SIGUSR2: started" in l for l in w.log_lines()), 3 * SLOW,
                   "the upgrade to start")
        child = int(re.search(r"started new wsd pid=(\d+)", w.log()).group(1))
        w.send_signal(signal.SIGTERM)
        w.proc.wait(10 * SLOW)
        # wsd reaped it before exiting: it is not a zombie handed to this process or to init
        check(proc_status(child) is None, f"the killed new generation {child}: "
              f"{proc_status(child)}")
        check(any("killing new wsd pid=" in l and "was not ready yet" in l
                  for l in w.log_lines()), "the starting generation was not killed:\n"
              + w.log_tail())
        w.stop()  # checks exit 0 and that no process of this instance (the sleep too) is left
    finally:
        if not w.stopped:  # whichever generation is left, found by the instance's marker
            w.kill()
        b.close()


run()
