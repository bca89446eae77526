#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""systemd integration without systemd: sockets passed the way a .socket unit passes them
(LISTEN_FDS=N from fd 3, LISTEN_PID, LISTEN_FDNAMES) and a fake NOTIFY_SOCKET (a unix datagram
socket this file reads) prove READY once the pool is warm, STATUS with the open connections,
WATCHDOG, RELOADING, STOPPING, echo over the passed socket, and that bad LISTEN_* values stop
startup with one line (exit 2)."""

import os
import signal
import socket
import subprocess
import time
import uuid

from wsdtest import (WSD_BIN, Fail, NotifySocket, Wsd, case, check, echo_once, free_port,
                     marked_pids, run, tcp_listener, wait_until, with_listen_fds, ws_connect)


def run_wsd_with_fds(fds, env=None, timeout=5):
    """Run wsd with fds passed in until it exits (bounded); returns CompletedProcess."""
    marker = uuid.uuid4().hex
    e = {k: v for k, v in os.environ.items() if not k.startswith(("WSD_", "LISTEN_"))}
    e.update({"WSD_LISTEN": "127.0.0.1:0", "WSD_TEST_INSTANCE": marker})
    argv, extra = with_listen_fds([WSD_BIN], e, fds)
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    try:
        return subprocess.run(argv, env=e, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, **extra)
    except subprocess.TimeoutExpired:
        raise Fail(f"wsd with fds {fds} and {env} still running after {timeout} s") from None
    finally:
        for p in marked_pids(marker):
            os.kill(p, signal.SIGKILL)


def expect_refused(fds, env, *words):
    r = run_wsd_with_fds(fds, env)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(r.returncode == 2, f"exit status {r.returncode}, want 2; stderr {r.stderr!r}")
    check(len(lines) == 1, f"want one stderr line, got {lines!r}")
    for w in words:
        check(w in lines[0], f"the line does not name {w!r}: {lines[0]!r}")


@case("LISTEN_FDS=1 'ws' at fd 3: wsd serves echo on it and does not bind WSD_LISTEN")
def passed_socket_serves():
    unused = free_port()
    with tcp_listener() as ls:
        port = ls.getsockname()[1]
        with Wsd(listen=f"127.0.0.1:{unused}", listen_fds=[(ls.fileno(), "ws")]) as w:
            check(w.port == port, f"wsd announced port {w.port}, the passed socket is {port}")
            check("socket passed in" in w.log(), "the listening line does not say where the "
                  "socket came from:\n" + w.log_tail())
            echo_once(w, "over the passed socket")
            with socket.socket() as c:
                check(c.connect_ex(("127.0.0.1", unused)) != 0,
                      f"wsd also listens on WSD_LISTEN port {unused}")
            w.check_clean()
            w.stop()


@case("one unnamed passed socket (no FileDescriptorName=) is the ws:// listener")
def unnamed_socket_is_ws():
    with tcp_listener() as ls:
        with Wsd(listen_fds=[(ls.fileno(), "unknown")]) as w:
            check(w.port == ls.getsockname()[1], "wsd did not take the unnamed socket")
            echo_once(w)
            w.stop()


@case("NOTIFY_SOCKET: READY=1 once the pool is warm, STATUS follows the open connections")
async def ready_and_status():
    with NotifySocket() as ns, tcp_listener() as ls:
        w = Wsd(env={"NOTIFY_SOCKET": ns.path, "WSD_POOL_MIN": "3"},
                listen_fds=[(ls.fileno(), "ws")], wait_pool=False).start()
        try:
            ready = ns.wait_for("READY")
            # the pool was warm when READY was sent: its workers exist now
            check(len(w.workers()) >= 3, f"READY before the pool was warm: {w.children()}")
            check(ready.get("STATUS") == "0 connections open, 3 idle workers",
                  f"first STATUS: {ready}")
            n = len(ns.messages())
            async with ws_connect(w) as c:
                await c.send("x")
                check(await c.recv() == "x", "no echo")
                ns.wait_for("STATUS", value="1 connections open, 3 idle workers", after=n)
            ns.wait_for("STATUS", value="0 connections open, 3 idle workers", after=n)
            check(not any("WATCHDOG" in m for m in ns.messages()),
                  "WATCHDOG=1 sent without WATCHDOG_USEC")
            check(sum("READY" in m for m in ns.messages()) == 1, f"READY more than once: "
                  f"{ns.messages()}")
            w.stop()
        finally:
            if w.running():
                w.kill()


@case("WATCHDOG_USEC: WATCHDOG=1 at least every half interval; not with another WATCHDOG_PID")
def watchdog():
    with NotifySocket() as ns:
        with Wsd(env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"}) as w:
            ns.wait_for("READY")
            t0 = time.monotonic()
            wait_until(lambda: sum("WATCHDOG" in m for m in ns.messages()) >= 4, 3,
                       "four WATCHDOG=1 messages")
            took = time.monotonic() - t0
            check(took < 2.5, f"four WATCHDOG=1 took {took:.2f} s with WATCHDOG_USEC=400000")
            w.stop()
    with NotifySocket() as ns:
        with Wsd(env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "200000",
                      "WATCHDOG_PID": "1"}) as w:
            ns.wait_for("READY")
            time.sleep(0.5)  # 5 watchdog intervals: none may come
            check(not any("WATCHDOG" in m for m in ns.messages()),
                  f"WATCHDOG=1 sent though WATCHDOG_PID names pid 1: {ns.messages()}")
            w.stop()


@case("SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1; SIGTERM: STOPPING=1")
def reloading_and_stopping():
    with NotifySocket() as ns:
        w = Wsd(env={"NOTIFY_SOCKET": ns.path}).start()
        ns.wait_for("READY")
        n = len(ns.messages())
        before = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        w.send_signal(signal.SIGHUP)
        m = ns.wait_for("RELOADING", after=n)
        after = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        usec = int(m.get("MONOTONIC_USEC", "0"))
        check(before <= usec <= after, f"MONOTONIC_USEC={usec} not within [{before}, {after}]")
        i = ns.messages().index(m)
        ns.wait_for("READY", after=i + 1)
        echo_once(w)
        n = len(ns.messages())
        w.stop()
        ns.wait_for("STOPPING", after=n, timeout=1)


@case("NOTIFY_SOCKET naming no socket: wsd serves as without systemd")
def notify_socket_missing():
    with Wsd(env={"NOTIFY_SOCKET": "/nonexistent/notify"}) as w:
        echo_once(w)
        w.check_clean()
        w.stop()


@case("LISTEN_PID naming another process: the fds are not ours, WSD_LISTEN is used")
def listen_pid_other():
    with tcp_listener() as ls:
        passed = ls.getsockname()[1]
        w = Wsd(listen_fds=[(ls.fileno(), "ws")], listen_pid="1")
        with w:
            check(w.port != passed, "wsd took a socket whose LISTEN_PID is not its pid")
            check("bound here" in w.log(), w.log_tail())
            echo_once(w)
            w.stop()


@case("bad LISTEN_FDS / LISTEN_FDNAMES: exit 2, one line naming the variable")
def bad_listen_fds():
    with tcp_listener() as ls, open("/dev/null") as f, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        fd = ls.fileno()
        expect_refused([(fd, "ws")], {"LISTEN_FDS": "abc"}, "LISTEN_FDS", "abc")
        expect_refused([(fd, "ws")], {"LISTEN_FDS": "2"}, "LISTEN_FDS", "2")
        expect_refused([(fd, "ws"), (fd, "wss")], {"LISTEN_FDNAMES": "ws"}, "LISTEN_FDNAMES")
        expect_refused([(fd, "http")], {}, "LISTEN_FDNAMES", "http")
        expect_refused([(fd, "ws"), (fd, "ws")], {}, "LISTEN_FDNAMES", "ws")
        expect_refused([(f.fileno(), "ws")], {}, "LISTEN_FDS", "not a listening TCP socket")
        expect_refused([(udp.fileno(), "ws")], {}, "LISTEN_FDS", "not a listening TCP socket")
        with socket.socket() as unbound:
            expect_refused([(unbound.fileno(), "ws")], {}, "LISTEN_FDS", "fd 3")
        expect_refused([(fd, "wsd-control")], {}, "LISTEN_FDS")


@case("a 'wss' socket is the wss:// listener: without WSD_TLS_CERT, exit 2 saying so")
def wss_name():
    with tcp_listener() as ls, tcp_listener() as ts:
        expect_refused([(ls.fileno(), "ws"), (ts.fileno(), "wss")], {}, "WSD_TLS_CERT",
                       "wss socket was passed in")
        expect_refused([(ts.fileno(), "wss")], {}, "WSD_TLS_CERT")


@case("contrib units: systemd-analyze verify is clean; notify, hardening, KillMode, exit 2")
def units_verify():
    import shutil
    import tempfile
    from wsdtest import REPO, Skip
    contrib = os.path.join(REPO, "contrib")
    svc = open(os.path.join(contrib, "wsd.service")).read()
    for line in ["Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "User=wsd",
                 "KillMode=mixed", "RestartPreventExitStatus=2", "ExecReload=/bin/kill -HUP $MAINPID",
                 "WatchdogSec="]:
        check(line in svc, f"wsd.service lacks {line!r}")
    check("FileDescriptorName=ws\n" in open(os.path.join(contrib, "wsd.socket")).read(),
          "wsd.socket does not name its socket ws")
    check("FileDescriptorName=wss\n" in open(os.path.join(contrib, "wsd-tls.socket")).read(),
          "wsd-tls.socket does not name its socket wss")
    if not shutil.which("systemd-analyze"):
        raise Skip("systemd-analyze is not installed")
    with tempfile.TemporaryDirectory() as d:
        # the installed path of wsd, here the one under test (make install rewrites it too)
        open(os.path.join(d, "wsd.service"), "w").write(
            svc.replace("/usr/local/sbin/wsd", WSD_BIN))
        for u in ("wsd.socket", "wsd-tls.socket"):
            shutil.copy(os.path.join(contrib, u), d)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", "wsd.service", "wsd.socket",
                            "wsd-tls.socket"], cwd=d, capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and not r.stderr.strip(),
              f"systemd-analyze verify: status {r.returncode}: {r.stderr}")


run()
