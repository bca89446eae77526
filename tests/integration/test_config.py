#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Configuration: a bad value stops startup with exit status 2 and one stderr line naming the
variable and the value; --help lists every variable; --version; log levels; bind failures."""

import os
import re
import resource
import socket
import subprocess
import uuid

from wsdtest import (REPO, WSD_BIN, Fail, Wsd, case, check, echo_once, free_port, marked_pids,
                     run, wait_until)

DOCUMENTED = ["WSD_LISTEN", "WSD_POOL_MIN", "WSD_MAX_CONNS", "WSD_MAX_MESSAGE",
              "WSD_MAX_HEADER_BYTES", "WSD_HANDSHAKE_TIMEOUT_MS", "WSD_SHUTDOWN_GRACE_MS",
              "WSD_CLOSE_TIMEOUT_MS", "WSD_LOG_LEVEL"]


def run_wsd(env=None, args=(), timeout=5, preexec=None):
    """Run wsd to completion (bounded); returns CompletedProcess with text output. A wsd that is
    still running at the deadline is killed, with everything it started, and the case fails."""
    marker = uuid.uuid4().hex
    e = {k: v for k, v in os.environ.items() if not k.startswith("WSD_")}
    e.update({"WSD_LISTEN": "127.0.0.1:0", "WSD_TEST_INSTANCE": marker})
    e.update(env or {})
    try:
        r = subprocess.run([WSD_BIN, *args], env=e, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, preexec_fn=preexec)
    except subprocess.TimeoutExpired as x:
        for p in marked_pids(marker):
            os.kill(p, 9)
        raise Fail(f"wsd {' '.join(args)} with {env} still running after {timeout} s; "
                   f"stderr: {x.stderr!r}") from None
    try:
        wait_until(lambda: not marked_pids(marker), 3, "no wsd process to be left")
    except Fail:
        for p in marked_pids(marker):
            os.kill(p, 9)
        raise
    return r


def _bad_value_case(var, value):
    def body():
        r = run_wsd({var: value})
        check(r.returncode == 2, f"{var}={value!r}: exit status {r.returncode}, want 2; stderr {r.stderr!r}")
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        check(len(lines) == 1, f"{var}={value!r}: want one stderr line, got {lines!r}")
        check(var in lines[0], f"the line does not name {var}: {lines[0]!r}")
        check(value in lines[0], f"the line does not show the value {value!r}: {lines[0]!r}")

    case(f"{var}={value!r} -> exit 2 with one stderr line naming the variable and the value")(body)


for _var, _value in [
    ("WSD_POOL_MIN", "abc"),
    ("WSD_POOL_MIN", "-1"),
    ("WSD_POOL_MIN", "4x"),
    ("WSD_MAX_MESSAGE", "0"),
    ("WSD_MAX_MESSAGE", "99999999999999999999999"),
    ("WSD_MAX_CONNS", "0"),
    ("WSD_MAX_HEADER_BYTES", "lots"),
    ("WSD_HANDSHAKE_TIMEOUT_MS", "-5"),
    ("WSD_SHUTDOWN_GRACE_MS", "1.5"),
    ("WSD_CLOSE_TIMEOUT_MS", "0x10"),
    ("WSD_LOG_LEVEL", "loud"),
    ("WSD_SUPERVISOR_SCHED", "rr"),
    ("WSD_LISTEN", "nonsense"),
    ("WSD_LISTEN", "127.0.0.1:70000"),
    ("WSD_LISTEN", "127.0.0.1"),
    ("WSD_LISTEN", "[::1:0"),
]:
    _bad_value_case(_var, _value)


@case("--help: exit 0, lists every documented WSD_ variable")
def help_lists_all():
    r = run_wsd(args=["--help"])
    check(r.returncode == 0, f"exit status {r.returncode}; stderr {r.stderr!r}")
    out = r.stdout + r.stderr
    missing = [v for v in DOCUMENTED if not re.search(r"\b" + v + r"\b", out)]
    check(not missing, f"--help does not list {missing}")


@case("--help and README.md's configuration table list the same WSD_ variables")
def help_matches_readme():
    readme = os.path.join(REPO, "README.md")
    if not os.path.exists(readme):
        from wsdtest import Skip
        raise Skip("no README.md")
    with open(readme) as f:
        documented = set(re.findall(r"^\| `(WSD_[A-Z0-9_]+)`", f.read(), re.M))
    r = run_wsd(args=["--help"])
    listed = set(re.findall(r"\b(WSD_[A-Z0-9_]+)", r.stdout + r.stderr))
    check(documented == listed, f"only in README: {sorted(documented - listed)}; "
                                f"only in --help: {sorted(listed - documented)}")


@case("--version: exit 0, prints a version number")
def version():
    r = run_wsd(args=["--version"])
    check(r.returncode == 0, f"exit status {r.returncode}; stderr {r.stderr!r}")
    check(re.search(r"\d+\.\d+", r.stdout + r.stderr), f"no version in {r.stdout!r} {r.stderr!r}")


@case("an unknown argument: non-zero exit, no server started")
def unknown_argument():
    r = run_wsd(args=["--no-such-option"])
    check(r.returncode != 0, f"exit status 0 for an unknown argument; stdout {r.stdout!r}")


@case("WSD_LISTEN on a port already in use: non-zero exit within 5 s, nothing left")
def port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_wsd({"WSD_LISTEN": f"127.0.0.1:{port}"})
    check(r.returncode != 0, "wsd started on a port already in use")
    check(str(port) in r.stderr, f"the error does not name the address: {r.stderr!r}")


@case("WSD_MAX_CONNS beyond RLIMIT_NOFILE: refuses to start with one line naming WSD_MAX_CONNS")
def max_conns_rlimit():
    def low():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    r = run_wsd({"WSD_MAX_CONNS": "19000"}, preexec=low)
    check(r.returncode == 2, f"exit status {r.returncode}, want 2; stderr {r.stderr!r}")
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    check(len(lines) == 1 and "WSD_MAX_CONNS" in lines[0], f"stderr {lines!r}")


@case("WSD_LISTEN=127.0.0.1:PORT (fixed): the listening line shows it, echo works")
def fixed_port():
    port = free_port()
    with Wsd(listen=f"127.0.0.1:{port}") as w:
        check(w.port == port, f"listening on {w.port}, want {port}")
        echo_once(w)
        w.check_clean()


@case("WSD_LOG_LEVEL=notice: no per-connection lines, the listening line stays, echo works")
def log_notice():
    with Wsd(env={"WSD_LOG_LEVEL": "notice"}) as w:
        echo_once(w)
        check(not w.lines_with("open") and not w.lines_with("close"),
              f"per-connection lines at notice: {w.log_tail()}")
        w.check_clean()


@case("WSD_LOG_LEVEL=error: nothing logged for a normal run, echo works")
def log_error():
    port = free_port()
    with Wsd(env={"WSD_LOG_LEVEL": "error"}, listen=f"127.0.0.1:{port}", wait_line=False) as w:
        echo_once(w)
        w.check_clean()
        log = w.log()
    check(log.strip() == "", f"log at level error: {log!r}")


@case("WSD_LOG_LEVEL=debug: open and close lines present, echo works")
def log_debug():
    with Wsd(env={"WSD_LOG_LEVEL": "debug"}) as w:
        echo_once(w)
        wait_until(lambda: w.lines_with("open") and w.lines_with("close"), 3, "open and close lines")
        w.check_clean()


if __name__ == "__main__":
    run()
