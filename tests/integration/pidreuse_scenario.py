#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Run as PID 1 of a new PID namespace (unshare --pid --fork --mount-proc): end connection A,
make the kernel hand A's worker pid to the worker that serves connection B (ns_last_pid), and
show that kill(old_pid) would hit B while wsctl, which names connections, answers "no such
connection" and leaves B alone. Prints what it saw; exit 0 pass, 1 fail, 77 skip."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsdtest import OP_CLOSE, OP_TEXT, RawWs, close_payload  # noqa: E402

WSD_BIN = os.environ["WSD_BIN"]
WSCTL = os.path.join(os.path.dirname(WSD_BIN), "wsctl")


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def wait(pred, what, timeout=5):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    fail(f"timed out waiting for {what}")


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def reap_orphans():
    """We are init here: collect anything re-parented to us."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main():
    if os.getpid() != 1:
        print("SKIP: not PID 1 of a new PID namespace")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="wsd-pidns-")
    log_path = os.path.join(tmp, "log")
    sock = os.path.join(tmp, "ctl.sock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSD_")}
    env.update(WSD_LISTEN="127.0.0.1:0", WSD_POOL_MIN="1", WSD_CONTROL_SOCKET=sock)
    log = open(log_path, "wb")
    wsd = subprocess.Popen([WSD_BIN], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def logtext():
        with open(log_path, errors="replace") as f:
            return f.read()

    try:
        port = int(wait(lambda: (re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", logtext())
                                 or [None, None])[1], "wsd to listen"))

        def open_pid(local_port):
            m = wait(lambda: re.search(r"open conn=(\d+) pid=(\d+) peer=127\.0\.0\.1:%d " %
                                       local_port, logtext()), f"open line for {local_port}")
            return int(m.group(1)), int(m.group(2))

        a = RawWs("127.0.0.1", port)
        a.handshake("/a")
        id_a, pid_a = open_pid(a.local_port)
        a.send_frame(OP_CLOSE, close_payload(1000))
        a.expect_close(1000, reply=False)
        a.close()
        wait(lambda: comm(pid_a) is None, f"A's worker {pid_a} to be reaped")
        print(f"A: conn={id_a} pid={pid_a} ended and reaped", flush=True)

        # The next process created in this namespace gets pid_a. Only wsd forks from here on:
        # B1 takes the idle worker, and wsd spawns its replacement with A's old pid.
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid_a - 1))
        b1 = RawWs("127.0.0.1", port)
        b1.handshake("/b1")
        wait(lambda: comm(pid_a) == "wsd-worker", f"a new worker with pid {pid_a}")
        b = RawWs("127.0.0.1", port)
        b.handshake("/b")
        id_b, pid_b = open_pid(b.local_port)
        if pid_b != pid_a:
            fail(f"B's worker is {pid_b}, not A's old pid {pid_a}")
        print(f"B: conn={id_b} pid={pid_b}: same pid as A's worker", flush=True)
        os.kill(pid_a, 0)  # delivers nothing; proves the old pid names a live process
        print(f"kill(old_pid) would hit B: pid {pid_a} is alive and serves conn={id_b}", flush=True)

        p = subprocess.run([WSCTL, "-s", sock, "kill", str(id_a), "--code", "4001"],
                           capture_output=True, text=True, timeout=10)
        if p.returncode != 1 or "no such connection" not in p.stderr:
            fail(f"wsctl kill A: {p.returncode} {p.stdout!r} {p.stderr!r}")
        print(f"wsctl: no such connection (exit {p.returncode}: {p.stderr.strip()})", flush=True)

        b.send_frame(OP_TEXT, b"still here")
        op, data, _ = b.recv_message()
        if (op, data) != (OP_TEXT, b"still here"):
            fail(f"B's echo: {(op, data)!r}")
        print("B still echoes after the kill for A", flush=True)
        for c in (b, b1):
            c.send_frame(OP_CLOSE, close_payload(1000))
            c.expect_close(1000, reply=False)
            c.close()
        wsd.send_signal(signal.SIGTERM)
        if wsd.wait(10) != 0:
            fail(f"wsd exited {wsd.returncode}")
        reap_orphans()
        left = [p for p in os.listdir("/proc") if p.isdigit() and p != "1"
                and comm(int(p)) and comm(int(p)).startswith("wsd")]
        if left:
            fail(f"processes left: {left}")
        print("PASS", flush=True)
    finally:
        if wsd.poll() is None:
            wsd.kill()
            wsd.wait()
        reap_orphans()
        print(logtext()[-3000:] if os.environ.get("WSD_TEST_VERBOSE") else "", end="")


if __name__ == "__main__":
    main()
