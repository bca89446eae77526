#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SIGHUP re-reads WSD_ENV_FILE: settings that can change at run time take their new values
for new connections (open ones keep theirs), every change is logged, settings that need a
restart are named and kept, and a file with a bad value is refused with one line while the old
configuration stays. At startup the file overrides the environment; a bad file is exit 2."""

import contextlib
import os
import signal
import subprocess
import tempfile
import uuid

from wsdtest import (OP_BINARY, WSD_BIN, Fail, Wsd, case, check, echo_once, marked_pids, run,
                     wait_until)


@contextlib.contextmanager
def env_file(text):
    """A WSD_ENV_FILE holding text, removed afterwards unless the test removed it already."""
    fd, path = tempfile.mkstemp(prefix="wsd-env-", suffix=".env")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def rewrite(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def hup(w, what="the 'SIGHUP: ' result line"):
    """SIGHUP, then wait for its result line; returns the lines it logged."""
    n = len(w.log_lines())
    w.send_signal(signal.SIGHUP)
    wait_until(lambda: any("configuration reloaded" in l or "SIGHUP: refused" in l
                           for l in w.log_lines()[n:]), 5, what)
    return [l for l in w.log_lines()[n:] if "SIGHUP" in l]


def send_binary(c, size):
    """Send one binary message of size bytes; returns the close code, or None if echoed."""
    c.send_frame(OP_BINARY, b"x" * size)
    f = c.recv_frame()
    if f.opcode == 0x8:
        return f.close_code()
    check(f.opcode == OP_BINARY and len(f.payload) == size, f"echo of {size} bytes: {f!r}")
    return None


@case("SIGHUP applies WSD_MAX_MESSAGE and WSD_POOL_MIN to new connections; open ones keep "
      "theirs; each change is logged")
def runtime_values():
    with env_file("# limits\nWSD_MAX_MESSAGE=1000\n\nWSD_POOL_MIN=2\n") as path:
        # the file wins over the environment: WSD_MAX_MESSAGE is 1000 (the open connection's
        # 1009 below shows it)
        with Wsd(env={"WSD_ENV_FILE": path, "WSD_MAX_MESSAGE": "999999",
                      "WSD_POOL_MIN": "2"}) as w:
            with w.raw() as old:
                old.handshake()
                rewrite(path, "WSD_MAX_MESSAGE='4000'\nWSD_POOL_MIN=5\n")
                lines = hup(w)
                check(any('WSD_MAX_MESSAGE changed from "1000" to "4000"' in l for l in lines),
                      f"no change line for WSD_MAX_MESSAGE: {lines}")
                check(any('WSD_POOL_MIN changed from "2" to "5"' in l for l in lines), lines)
                check(any("2 changed, 0 need a restart" in l for l in lines), lines)
                w.wait_idle(5)
                with w.raw() as new:
                    new.handshake()
                    check(send_binary(new, 3000) is None, "the new limit does not apply")
                    new.send_frame(0x8, b"\x03\xe8")
                # the connection opened before keeps the limit it started with
                check(send_binary(old, 3000) == 1009, "the open connection's limit changed")
            w.env_over["WSD_POOL_MIN"] = "5"  # what check_clean expects now
            w.fd_baseline += 3  # a pidfd for each of the three more idle workers
            w.check_clean()
            w.stop()


@case("SIGHUP: settings that need a restart are named, logged and kept")
def restart_values():
    with env_file("WSD_POOL_MIN=1\n") as path:
        with Wsd(env={"WSD_ENV_FILE": path, "WSD_POOL_MIN": "1"}) as w:
            rewrite(path, "WSD_POOL_MIN=1\nWSD_LISTEN=127.0.0.1:1\nWSD_MAX_CONNS_PER_IP=1\n"
                          "WSD_PING_INTERVAL_MS=5000\nWSD_LOG_LEVEL=notice\n")
            lines = hup(w)
            for name in ("WSD_LISTEN", "WSD_MAX_CONNS_PER_IP", "WSD_PING_INTERVAL_MS"):
                check(any(name in l and "needs a restart" in l for l in lines),
                      f"{name} not named as needing a restart: {lines}")
            check(any("1 changed, 3 need a restart" in l for l in lines), lines)
            # WSD_LISTEN kept: still here; WSD_MAX_CONNS_PER_IP kept: two connections at once
            with w.raw() as a, w.raw() as b:
                a.handshake()
                b.handshake()
            echo_once(w)
            # WSD_LOG_LEVEL=notice applied: connections log no 'open' line any more
            opens = len(w.lines_with("open"))
            echo_once(w)
            check(len(w.lines_with("open")) == opens, "log level not applied")
            w.stop()


@case("SIGHUP with a bad value, an unknown name or a missing file: one line, old config stays")
def refused():
    with env_file("WSD_MAX_MESSAGE=1000\n") as path:
        with Wsd(env={"WSD_ENV_FILE": path, "WSD_POOL_MIN": "1"}) as w:
            for text, words in [("WSD_MAX_MESSAGE=4000\nWSD_KILL_GRACE_MS=abc\n",
                                 ["WSD_KILL_GRACE_MS", "abc", "expected an integer"]),
                                ("WSD_MAX_MESAGE=4000\n", ["line 1", "WSD_MAX_MESAGE"]),
                                ("WSD_MAX_MESSAGE\n", ["line 1"]),
                                ("WSD_ENV_FILE=/x\n", ["WSD_ENV_FILE"]),
                                (None, ["No such file"])]:
                if text is None:
                    os.unlink(path)
                else:
                    rewrite(path, text)
                lines = hup(w)
                check(len(lines) == 1 and "SIGHUP: refused" in lines[0],
                      f"want one 'SIGHUP: refused' line, got {lines}")
                for word in words:
                    check(word in lines[0], f"{word!r} not in {lines[0]!r}")
                with w.raw() as c:  # WSD_MAX_MESSAGE is still 1000
                    c.handshake()
                    check(send_binary(c, 1000) is None and send_binary(c, 1001) == 1009,
                          "the old WSD_MAX_MESSAGE is not in force")
            w.stop()


def run_wsd(env, timeout=5):
    marker = uuid.uuid4().hex
    e = {k: v for k, v in os.environ.items() if not k.startswith("WSD_")}
    e.update({"WSD_LISTEN": "127.0.0.1:0", "WSD_TEST_INSTANCE": marker}, **env)
    try:
        return subprocess.run([WSD_BIN], env=e, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Fail(f"wsd with {env} still running after {timeout} s") from None
    finally:
        for p in marked_pids(marker):
            os.kill(p, signal.SIGKILL)


@case("startup: a bad WSD_ENV_FILE stops wsd with one line, exit 2")
def bad_file_at_startup():
    for text, words in [("WSD_POOL_MIN=lots\n", ["WSD_POOL_MIN", "lots"]),
                        ("NOT_OURS=1\n", ["WSD_ENV_FILE", "line 1", "NOT_OURS"]),
                        (None, ["WSD_ENV_FILE", "No such file"])]:
        with env_file(text or "") as path:
            if text is None:
                os.unlink(path)
            r = run_wsd({"WSD_ENV_FILE": path})
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(r.returncode == 2 and len(lines) == 1, f"{text!r}: status {r.returncode}, {lines}")
        for word in words:
            check(word in lines[0], f"{word!r} not in {lines[0]!r}")


run()
