#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The exec handler (issue 7) against the real binary with real clients: sh and python scripts
written by the test run per connection. Proves lines flow both ways (text, binary for non-UTF-8,
WSD_EXEC_BINARY), exit codes map to close codes, every way a connection ends (client close,
wsctl kill, heartbeat, a client that never answers the close) ends the program and a setsid
grandchild, a SIGTERM-ignoring program is SIGKILLed after half the grace, the CGI environment
and its refusals, WSD_EXEC_DIR routing, stderr modes, backpressure both ways (worker RSS from
/proc), the programs' sandbox (uid 65534, no root-only file, RLIMIT_NPROC, a forbidden syscall
kills) and bad configurations. Every case checks that the processes it started are gone."""

import asyncio
import os
import re
import socket
import struct
import subprocess
import tempfile
import time

from wsdtest import (OP_BINARY, OP_CLOSE, OP_TEXT, SLOW, WSD_BIN, Closed, RawWs, Shared, Wsd,
                     case, check, close_payload, expect_status, frame, pid_gone, proc_fields,
                     recv_within, run, upgrade_request, wait_until, ws_connect)

WSCTL = os.path.join(os.path.dirname(WSD_BIN), "wsctl")
GRACE_MS = 600  # WSD_KILL_GRACE_MS: the program's tree gets SIGKILL 300 ms after SIGTERM

SCRIPTS = {
    "echo.sh": r"""#!/bin/sh
echo "pid $$"
while IFS= read -r line; do
    case $line in
    bad) printf '\377ok\n' ;;
    *) printf '%s\n' "$line" ;;
    esac
done
""",
    "counter.py": """#!/usr/bin/python3
import os, time
print("pid", os.getpid(), flush=True)
for i in range(1, 100000):
    print(i, flush=True)
    time.sleep(0.1)
""",
    "exit3.sh": "#!/bin/sh\necho bye\nexit 3\n",
    "exit0.sh": "#!/bin/sh\necho done\n",
    "killself.sh": "#!/bin/sh\necho going\nkill -9 $$\n",
    "ignoreterm.sh": """#!/bin/sh
trap '' TERM
echo "pid $$"
while :; do sleep 0.05; done
""",
    "grandchild.py": """#!/usr/bin/python3
import os, sys
gc = os.fork()
if gc == 0:
    os.setsid()  # its own session: out of the program's process group
    os.execv("/bin/sleep", ["sleep", "300"])
print("pid", os.getpid(), "gc", gc, flush=True)
for line in sys.stdin:
    print(line.rstrip("\\n"), flush=True)
""",
    "env.sh": "#!/bin/sh\nexec /usr/bin/env\n",
    "flood.py": """#!/usr/bin/python3
import sys
out = sys.stdout.buffer
pad = b"x" * 1000
i = 0
while True:
    out.write(b"%d " % i + pad + b"\\n")
    i += 1
""",
    "sink.sh": "#!/bin/sh\necho \"pid $$\"\nexec sleep 300\n",
    "ident.sh": """#!/bin/sh
echo "uid $(id -u) gid $(id -g)"
echo "caps $(awk '/^CapPrm/ {p = $2} /^CapEff/ {e = $2} END {print p, e}' /proc/$$/status)"
if cat /etc/shadow >/dev/null 2>&1; then echo shadow-readable; else echo shadow-denied; fi
if touch "$1/x" 2>/dev/null; then echo wrote-outside; else echo write-denied; fi
if touch /tmp/wsdtest-exec-probe.$$ 2>/dev/null; then echo wrote-tmp; rm -f /tmp/wsdtest-exec-probe.$$; fi
""",
    "nproc.py": """#!/usr/bin/python3
import os, signal, time
kids = []
for i in range(40):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    kids.append(pid)
print("forked", len(kids), flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
for k in kids:
    os.waitpid(k, 0)
""",
    "uring.py": """#!/usr/bin/python3
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("before", flush=True)
params = ctypes.create_string_buffer(120)
libc.syscall(425, 1, params)  # io_uring_setup: its operations would bypass seccomp
print("after", flush=True)
""",
    "peek.sh": r"""#!/bin/sh
echo "pid $$"
read -r other
if cat "/proc/$other/environ" >/dev/null 2>&1; then echo environ-readable; else echo environ-denied; fi
if kill -0 "$other" 2>/dev/null; then echo signal-ok; else echo signal-denied; fi
""",
    "stderr.sh": "#!/bin/sh\necho out\necho \"to-stderr-$1$$\" >&2\n",
    "sub/inner.sh": "#!/bin/sh\necho \"inner $SCRIPT_NAME $PATH_INFO\"\n",
    ".hidden.sh": "#!/bin/sh\necho hidden\n",
}


def make_scripts():
    d = tempfile.mkdtemp(prefix="wsdtest-exec-")
    os.chmod(d, 0o755)  # the programs run as nobody
    for name, text in SCRIPTS.items():
        path = os.path.join(d, name)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        os.chmod(os.path.dirname(path), 0o755)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    with open(os.path.join(d, "noexec.sh"), "w") as f:
        f.write("#!/bin/sh\necho no\n")
    os.chmod(os.path.join(d, "noexec.sh"), 0o644)
    os.symlink(os.path.join(d, "echo.sh"), os.path.join(d, "link.sh"))
    return d


DIR = make_scripts()
BASE_ENV = {"WSD_HANDLER": "exec", "WSD_EXEC_DIR": DIR, "WSD_KILL_GRACE_MS": str(GRACE_MS),
            "WSD_POOL_MIN": "2", "WSD_CLOSE_TIMEOUT_MS": "4000",
            "WSD_EXEC_PASSENV": "PATH WSDTEST_PASS", "WSDTEST_PASS": "passed",
            "WSDTEST_SECRET": "kept", "WSD_EXEC_RLIMIT_NPROC": "0"}
srv = Shared(env=BASE_ENV)


def wsctl(w, *args):
    cmd = [WSCTL, "-s", os.path.join(w.tmp, "ctl.sock")] + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, timeout=10 * SLOW)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def connect(w, path, **kw):
    c = w.raw()
    c.handshake(path, **kw)
    return c


def text(c, timeout=5):
    # the heartbeat case pings every 200 ms, maybe before the program's first line
    op, data, _ = c.recv_message(timeout, skip_pings=True)
    check(op == OP_TEXT, f"want a text message, got opcode {op} {data!r}")
    return data.decode()


def pids_line(c):
    """The scripts' first line: 'pid N [gc M]' -> [N, M...]."""
    line = text(c)
    check(line.startswith("pid "), f"first line {line!r}")
    return [int(v) for v in line.split()[1::2]]


def wsctl_kill_grandchild(w, c, *args):
    """c is connected to /grandchild.py: read its pids, then `wsctl kill` its connection with
    args. Returns (program pid, grandchild pid, worker pid)."""
    pid, gc = pids_line(c)
    worker = w.worker_of(c.local_port)
    cid = int(w.open_line(c.local_port)["conn"])
    rc, out, err = wsctl(w, "kill", cid, *args)
    check(rc == 0, f"wsctl kill {' '.join(args)}: {rc} {out} {err}")
    return pid, gc, worker


def wait_gone(pids, timeout=3, what="the program's tree"):
    wait_until(lambda: all(pid_gone(p) for p in pids), timeout,
               f"{what} ({pids}) to be gone and reaped")


def messages_until_close(c, timeout=5):
    """Every data message up to the server's close frame: ([(op, data)], close frame)."""
    out = []
    while True:
        f = c.recv_frame(timeout)
        if f.opcode == OP_CLOSE:
            return out, f
        out.append((f.opcode, f.payload))


def grep(w, text):
    return [l for l in w.log_lines() if text in l]


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


# ---------------------------------------------------------------------------------------------
# messages both ways


@case("sh line echo: each message becomes a stdin line and each stdout line a text message; "
      "a message holding a newline arrives as two lines; a line that is not UTF-8 comes back "
      "binary")
def line_echo():
    w = srv()
    with connect(w, "/echo.sh") as c:
        (pid,) = pids_line(c)
        for m in ["hello", "wörld €😀", ""]:
            c.send_frame(OP_TEXT, m.encode())
            got = text(c)
            check(got == m, f"echo of {m!r}: {got!r}")
        c.send_frame(OP_TEXT, b"one\ntwo")
        check([text(c), text(c)] == ["one", "two"], "a message with a newline -> two lines")
        c.send_frame(OP_BINARY, b"raw bytes")
        check(text(c) == "raw bytes", "a binary message is written as a line too")
        c.send_frame(OP_TEXT, b"bad")
        op, data, _ = c.recv_message()
        check((op, data) == (OP_BINARY, b"\xffok"), f"non-UTF-8 line: {(op, data)!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)
    wait_gone([pid])


@case("python counter: a line every 100 ms arrives as it is printed, in order")
async def counter_streams():
    w = srv()
    async with ws_connect(w, "/counter.py") as ws:
        first = await recv_within(ws)
        pid = int(first.split()[1])
        t0 = time.monotonic()
        got = [int(await recv_within(ws, 3)) for _ in range(5)]
        took = time.monotonic() - t0
        check(got == [1, 2, 3, 4, 5], f"counter: {got}")
        check(took >= 0.3, f"5 lines 100 ms apart took {took:.3f} s: not streamed as printed")
    await asyncio.sleep(0)
    wait_gone([pid])


@case("exit status 0 closes with 1000; exit 3 with 1011 'exited with status 3'; kill -9 with "
      "1011 'killed by signal 9 (SIGKILL)'; the last line comes first")
def exit_codes():
    w = srv()
    for path, last, code, reason in [("/exit0.sh", "done", 1000, b""),
                                     ("/exit3.sh", "bye", 1011, b"exited with status 3"),
                                     ("/killself.sh", "going", 1011,
                                      b"killed by signal 9 (SIGKILL)")]:
        with connect(w, path) as c:
            msgs, f = messages_until_close(c)
            check(msgs == [(OP_TEXT, last.encode())], f"{path}: messages {msgs!r}")
            check(f.close_code() == code and f.payload[2:] == reason,
                  f"{path}: close {f.close_code()} {f.payload[2:]!r}, want {code} {reason!r}")
            c.send_frame(OP_CLOSE, f.payload[:2])
            c.expect_eof()


# ---------------------------------------------------------------------------------------------
# every way a connection ends takes the program's whole tree with it


@case("client close: the program and its setsid grandchild are ended and reaped")
def client_close_ends_tree():
    w = srv()
    with connect(w, "/grandchild.py") as c:
        pid, gc = pids_line(c)
        check(not pid_gone(gc), "the grandchild runs")
        c.send_frame(OP_TEXT, b"hi")
        check(text(c) == "hi", "echo through python")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)
    wait_gone([pid, gc])


@case("wsctl kill: close 1008 reaches the client; the program and its setsid grandchild are "
      "gone within the grace")
def wsctl_kill_ends_tree():
    w = srv()
    with connect(w, "/grandchild.py") as c:
        pid, gc, _ = wsctl_kill_grandchild(w, c)
        c.expect_close(1008)
    wait_gone([pid, gc], GRACE_MS / 1000 + 2)


@case("wsctl kill --force SIGKILLs the worker: the program dies with it, and its setsid "
      "grandchild, adopted by the supervisor (not init), is SIGKILLed and reaped")
def force_kill_ends_orphans():
    w = srv()
    with connect(w, "/grandchild.py") as c:
        pid, gc, worker = wsctl_kill_grandchild(w, c, "--force")
        c.expect_eof()
    wait_gone([worker, pid, gc], 3, "the worker, its program and the grandchild")
    wait_until(lambda: grep(w, f"reaped pid={gc}, a stray left by a worker"), 3,
               "the supervisor's line for the grandchild")
    # the program too: it came to the supervisor as its worker died, then PDEATHSIG ended it
    check(grep(w, f"reaped pid={pid}, a stray left by a worker"), "the program's line")
    rc, out, _ = wsctl(w, "stats")
    counts = dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)
    check(rc == 0 and int(counts.get("strays_reaped", 0)) == 2, f"stats: {out}")


@case("a program that ignores SIGTERM (and its children) gets SIGKILL half a WSD_KILL_GRACE_MS "
      "after the SIGTERM, and the log says so")
def sigterm_ignorer_killed():
    w = srv()
    with connect(w, "/ignoreterm.sh") as c:
        (pid,) = pids_line(c)
        cid = int(w.open_line(c.local_port)["conn"])
        t0 = time.monotonic()
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)
        wait_gone([pid], GRACE_MS / 1000 + 2)
        took = time.monotonic() - t0
    check(took >= GRACE_MS / 2000 * 0.9, f"gone after {took:.3f} s: it ignored SIGTERM, so only "
                                          f"SIGKILL at {GRACE_MS / 2} ms could end it")
    wait_until(lambda: grep(w, f"program conn={cid} pid={pid} still running"), 3,
               "the SIGKILL log line")


@case("a client that never answers the close: the program and grandchild end within the "
      "grace, long before WSD_CLOSE_TIMEOUT_MS gives up on the client")
def silent_client_tree_ends():
    w = srv()
    with connect(w, "/grandchild.py") as c:
        pid, gc, _ = wsctl_kill_grandchild(w, c, "--code", "4000")
        f = c.recv_frame()
        check(f.opcode == OP_CLOSE and f.close_code() == 4000, f"close frame {f!r}")
        wait_gone([pid, gc], GRACE_MS / 1000 + 1)  # never answered; TCP still open
        check(not c.eof, "the server waits for the client's close meanwhile")


@case("heartbeat: a client that stops answering pings is terminated, and so is its program "
      "with its grandchild")
def heartbeat_ends_program():
    env = dict(BASE_ENV, WSD_PING_INTERVAL_MS="200", WSD_PING_TIMEOUT_MS="300")
    with Wsd(env=env) as w:
        with connect(w, "/grandchild.py") as c:
            pid, gc = pids_line(c)
            cid = int(w.open_line(c.local_port)["conn"])
            # read (and never answer) pings until the close frame
            deadline = time.monotonic() + 5 * SLOW
            while True:
                check(time.monotonic() < deadline, "no close from the heartbeat")
                f = c.recv_frame(5)
                if f.opcode == OP_CLOSE:
                    break
            check(f.close_code() == 1001, f"heartbeat close {f.close_code()}")
            wait_gone([pid, gc], GRACE_MS / 1000 + 2)
        line = wait_until(lambda: grep(w, f"terminated conn={cid} "), 3, "terminated line")
        check("cause=heartbeat" in line[0], line[0])
        w.check_clean()


# ---------------------------------------------------------------------------------------------
# environment


def env_of(w, path, extra=()):
    with w.raw() as c:
        c.send(upgrade_request(path, extra=extra))
        r = c.read_http()
        check(r.status == 101, f"want 101, got {r!r}")
        msgs, f = messages_until_close(c)
        check(f.close_code() == 1000, f"env.sh ends with 1000, got {f.close_code()}")
        lines = [d.decode() for op, d in msgs]
        return dict(l.split("=", 1) for l in lines), c.local_port


@case("the environment is websocketd's: CGI variables, one HTTP_* per header (repeats joined), "
      "UNIQUE_ID, and of wsd's own variables only those in WSD_EXEC_PASSENV")
def environment():
    w = srv()
    env, port = env_of(w, "/env.sh/extra/path?a=1&b=two",
                       extra=[("X-Custom", "hello world"), ("X-Dup", "a"), ("X-Dup", "b"),
                              ("Origin", "http://example.test")])
    cid = int(w.open_line(port)["conn"])
    want = {"GATEWAY_INTERFACE": "websocketd-CGI/0.1", "SERVER_SOFTWARE": "wsd",
            "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(w.port), "REMOTE_ADDR": "127.0.0.1", "REMOTE_HOST": "127.0.0.1",
            "REMOTE_PORT": str(port), "REQUEST_METHOD": "GET",
            "REQUEST_URI": "/env.sh/extra/path?a=1&b=two", "SCRIPT_NAME": "/env.sh",
            "PATH_INFO": "/extra/path", "QUERY_STRING": "a=1&b=two", "UNIQUE_ID": str(cid),
            "HTTP_X_CUSTOM": "hello world", "HTTP_X_DUP": "a, b",
            "HTTP_ORIGIN": "http://example.test", "HTTP_HOST": "127.0.0.1",
            "HTTP_UPGRADE": "websocket", "HTTP_CONNECTION": "Upgrade",
            "HTTP_SEC_WEBSOCKET_VERSION": "13", "WSDTEST_PASS": "passed"}
    for k, v in want.items():
        check(env.get(k) == v, f"{k}={env.get(k)!r}, want {v!r}")
    check("HTTP_SEC_WEBSOCKET_KEY" in env and "PATH" in env, f"key and PATH: {sorted(env)}")
    extra = set(env) - set(want) - {"HTTP_SEC_WEBSOCKET_KEY", "PATH", "PWD"}
    check(not extra, f"variables nobody asked for: {sorted(extra)}")
    check("HTTPS" not in env, "HTTPS only over TLS")


@case("over wss:// the program gets HTTPS=on (and the TLS port as SERVER_PORT)")
async def environment_https():
    import websockets
    from testcerts import TestPKI
    pki = TestPKI()
    try:
        chain, key, _ = pki.leaf("exec")
        env = dict(BASE_ENV, WSD_TLS_LISTEN="127.0.0.1:0", WSD_TLS_CERT=chain,
                   WSD_TLS_KEY=key, WSD_POOL_MIN="1")
        with Wsd(env=env) as w:
            port = int(re.search(r"listening on wss://127\.0\.0\.1:(\d+)/", w.log()).group(1))
            async with websockets.connect(f"wss://127.0.0.1:{port}/env.sh?x=1",
                                          ssl=pki.client_context(), compression=None,
                                          open_timeout=5 * SLOW) as ws:
                got = []
                try:
                    while True:
                        got.append(await recv_within(ws))
                except websockets.ConnectionClosed:
                    pass
            env_seen = dict(l.split("=", 1) for l in got)
            check(env_seen.get("HTTPS") == "on" and env_seen.get("SERVER_PORT") == str(port)
                  and env_seen.get("QUERY_STRING") == "x=1", f"over wss://: {env_seen}")
            w.check_clean()
    finally:
        pki.cleanup()


@case("headers cannot inject variables: bare CR/LF or '=' in a name are refused (400, no "
      "program); '_' names and Proxy are left out; a 6000-byte value full of '=' and NUL-free "
      "junk stays one variable")
def environment_injection():
    w = srv()
    started = len(grep(w, "program conn="))
    for extra in ([("X-A", "1\rLD_PRELOAD=/tmp/x.so")], [("X-A", "1\nLD_PRELOAD=/tmp/x.so")],
                  [("LD_PRELOAD=/tmp/x.so X-A", "1")]):
        expect_status(w, upgrade_request("/env.sh", extra=extra), 400)
    big = ("LD_PRELOAD=/tmp/x.so\tPATH=/evil " * 200)[:6000]
    env, _ = env_of(w, "/env.sh", extra=[("X_Under", "1"), ("Proxy", "http://evil:1/"),
                                         ("X-Big", big)])
    check(env.get("HTTP_X_BIG") == big, "the big value, whole and alone")
    check("LD_PRELOAD" not in env and "HTTP_PROXY" not in env and "HTTP_X_UNDER" not in env,
          f"injected or aliased: {sorted(env)}")
    check(env.get("PATH") != "/evil", "PATH untouched")
    check(len(grep(w, "program conn=")) == started + 2,  # started + exited lines of one
          "no program ran for a refused request")


# ---------------------------------------------------------------------------------------------
# routing, modes


@case("WSD_EXEC_DIR routing: /sub/inner.sh/x runs sub/inner.sh; a missing name, '..', a dot "
      "file, a symlink, a non-executable file and a directory all get 404")
def dir_routing():
    w = srv()
    with connect(w, "/sub/inner.sh/x/y?q=1") as c:
        msgs, f = messages_until_close(c)
        check(msgs == [(OP_TEXT, b"inner /sub/inner.sh /x/y")], f"inner: {msgs!r}")
    for path in ["/missing.sh", "/../etc/passwd", "/sub/../echo.sh", "/.hidden.sh", "/link.sh",
                 "/noexec.sh", "/sub", "/", "//echo.sh"]:
        expect_status(w, upgrade_request(path), 404)


@case("WSD_EXEC=cat (found on PATH) with WSD_EXEC_BINARY=1: raw bytes both ways as binary "
      "messages, newlines and all")
def binary_mode():
    with Wsd(env={"WSD_HANDLER": "exec", "WSD_EXEC": "cat", "WSD_EXEC_BINARY": "1",
                  "WSD_POOL_MIN": "1"}) as w:
        with connect(w, "/") as c:
            data = bytes(range(256)) + b"\n\x00\xff"
            c.send_frame(OP_BINARY, data)
            got = b""
            while len(got) < len(data):
                op, d, _ = c.recv_message()
                check(op == OP_BINARY, f"binary mode sends binary, got {op}")
                got += d
            check(got == data, "the bytes came back unchanged")
            c.send_frame(OP_CLOSE, close_payload(1000))
            c.expect_close(1000, reply=False)
        w.check_clean()


@case("WSD_EXEC_STDERR: log puts each line in wsd's log with conn and pid; pass leaves it raw "
      "on wsd's stderr; null drops it")
def stderr_modes():
    for mode in ["log", "pass", "null"]:
        env = {"WSD_HANDLER": "exec", "WSD_EXEC": f"{DIR}/stderr.sh {mode}",
               "WSD_EXEC_STDERR": mode, "WSD_POOL_MIN": "1"}
        with Wsd(env=env) as w:
            with connect(w, "/") as c:
                msgs, f = messages_until_close(c)
                check(msgs == [(OP_TEXT, b"out")] and f.close_code() == 1000, f"{mode}: {msgs}")
            # the worker logs the connection's close after the program's last words
            lines = wait_until(lambda: grep(w, "close conn=1 ") and w.log_lines(), 3,
                               "the connection's close line")
            said = [l for l in lines if f"to-stderr-{mode}" in l]
            if mode == "log":
                check(len(said) == 1 and re.search(r"wsd-worker\[\d+\]: info: stderr conn=1 "
                                                   r"pid=\d+: to-stderr-log\d+$", said[0]),
                      f"log mode: {said}")
            elif mode == "pass":
                check(len(said) == 1 and re.fullmatch(r"to-stderr-pass\d+", said[0]),
                      f"pass mode: {said}")
            else:
                check(not said, f"null mode: {said}")
            w.check_clean()


# ---------------------------------------------------------------------------------------------
# backpressure


@case("backpressure out: a program flooding stdout to a client that does not read is paused; "
      "the worker's RSS stays bounded; reading later gets every line, in order", timeout=40)
def backpressure_out():
    env = dict(BASE_ENV, WSD_EXEC_BUFFER="65536", WSD_POOL_MIN="1")
    with Wsd(env=env) as w:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.connect((w.host, w.port))
        c = RawWs.__new__(RawWs)
        c.sock, c.timeout, c.buf, c.eof = s, 5 * SLOW, b"", False
        s.settimeout(c.timeout)
        c.handshake("/flood.py")
        worker = w.worker_of(c.local_port)
        time.sleep(0.3)
        rss0 = vm_rss_kib(worker)
        time.sleep(1.0)
        rss1 = vm_rss_kib(worker)
        # the bound: the unsent output (<= WSD_EXEC_BUFFER + one line) plus the unfinished line
        check(rss1 - rss0 < 1024, f"worker RSS grew {rss1 - rss0} KiB in 1 s while paused "
                                  f"({rss0} -> {rss1} KiB)")
        nums = []
        while len(nums) < 3000:
            op, d, _ = c.recv_message(10)
            nums.append(int(d.split(b" ", 1)[0]))
        check(nums == list(range(nums[0], nums[0] + len(nums))) and nums[0] == 0,
              f"lines lost or reordered: {nums[:5]}...")
        rss2 = vm_rss_kib(worker)  # (AddressSanitizer keeps freed buffers in quarantine)
        check(rss2 - rss0 < 8192, f"worker RSS {rss0} -> {rss2} KiB after draining")
        c.send_frame(OP_CLOSE, close_payload(1000))
        try:
            c.expect_close(1000, reply=False, timeout=5)
        except Closed:
            pass
        c.close()
        w.check_clean()


@case("backpressure in: a client flooding a program that never reads stdin is paused; the "
      "worker's RSS stays bounded and the client's sends stall; its reset still ends the "
      "program", timeout=40)
def backpressure_in():
    env = dict(BASE_ENV, WSD_EXEC_BUFFER="65536", WSD_POOL_MIN="1")
    with Wsd(env=env) as w:
        with connect(w, "/sink.sh") as c:
            (pid,) = pids_line(c)
            worker = w.worker_of(c.local_port)
            rss0 = vm_rss_kib(worker)
            c.sock.setblocking(False)
            msg = b"y" * 65535 + b"\n"
            sent, t_end = 0, time.monotonic() + 1.5
            pending = b""
            while time.monotonic() < t_end:
                if not pending:
                    pending = frame(OP_BINARY, msg)
                try:
                    n = c.sock.send(pending)
                    sent += n
                    pending = pending[n:]
                except BlockingIOError:
                    time.sleep(0.01)
            rss1 = vm_rss_kib(worker)
            check(sent < 64 << 20, f"the client sent {sent >> 20} MiB: nothing paused it")
            check(rss1 - rss0 < 2048, f"worker RSS grew {rss1 - rss0} KiB ({rss0} -> {rss1})")
            # A paused connection reads nothing, not even a close frame; a client that resets
            # the connection is noticed all the same, and ends the program.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wait_gone([pid], GRACE_MS / 1000 + 2)
        w.check_clean()


# ---------------------------------------------------------------------------------------------
# the programs' sandbox


def caps(pid):
    """{'CapPrm': int, 'CapEff': int, 'CapBnd': int, 'CapAmb': int} of a live process."""
    return {k: int(v, 16) for k, v in proc_fields(pid).items()
            if k in ("CapPrm", "CapEff", "CapBnd", "CapAmb")}


@case("programs run as nobody (uid 65534) with no capability, cannot read /etc/shadow, and "
      "cannot write to a world-writable directory outside the temporary ones (Landlock), but "
      "can in /tmp; their worker keeps only CAP_KILL, CAP_SETUID, CAP_SETGID and "
      "CAP_SYS_RESOURCE")
def runs_as_nobody():
    ww = tempfile.mkdtemp(prefix="wsdtest-ww-", dir="/run")
    os.chmod(ww, 0o1777)  # the file permissions allow it: only Landlock can refuse
    try:
        with Wsd(env=dict(BASE_ENV, WSD_POOL_MIN="1",
                          WSD_EXEC=f"{DIR}/ident.sh {ww}", WSD_EXEC_DIR=None)) as w:
            own = caps(w.pid)["CapPrm"]
            check(own != 0, "these tests run as root: wsd holds capabilities")
            # CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SYS_RESOURCE
            keep = own & (1 << 5 | 1 << 6 | 1 << 7 | 1 << 24)
            for pid in w.workers():
                got = caps(pid)
                check(got == {"CapPrm": keep, "CapEff": keep, "CapBnd": keep, "CapAmb": 0},
                      f"worker {pid}: {got}, want {keep:#x}")
            with connect(w, "/") as c:
                msgs, f = messages_until_close(c)
            w.check_clean()
        lines = [d.decode() for _, d in msgs]
        check(lines[:2] == ["uid 65534 gid 65534", "caps 0000000000000000 0000000000000000"],
              f"identity: {lines}")
        check(lines[2:] == ["shadow-denied", "write-denied", "wrote-tmp"], f"file access: {lines}")
        check(os.listdir(ww) == [], "a file appeared outside /tmp")
    finally:
        for n in os.listdir(ww):
            os.unlink(os.path.join(ww, n))
        os.rmdir(ww)


@case("two connections' programs (one user) cannot read each other's /proc/PID/environ (the "
      "other client's headers) or signal each other: each runs in a Landlock domain of its own")
def programs_isolated():
    w = srv()
    with connect(w, "/peek.sh", extra=[("Cookie", "secret=1")]) as a, connect(w, "/peek.sh") as b:
        (pa,) = pids_line(a)
        (pb,) = pids_line(b)
        b.send_frame(OP_TEXT, str(pa).encode())
        msgs, f = messages_until_close(b)
        check(msgs == [(OP_TEXT, b"environ-denied"), (OP_TEXT, b"signal-denied")],
              f"b peeking at a: {msgs}")
        a.send_frame(OP_TEXT, str(pb).encode())
        messages_until_close(a)
    wait_gone([pa, pb])


@case("WSD_EXEC_RLIMIT_NPROC=8: the program cannot fork past the limit")
def nproc_limit():
    env = dict(BASE_ENV, WSD_EXEC_RLIMIT_NPROC="8", WSD_POOL_MIN="1")
    with Wsd(env=env) as w:
        with connect(w, "/nproc.py") as c:
            msgs, f = messages_until_close(c, 15)
        m = re.fullmatch(rb"forked (\d+)", msgs[0][1]) if msgs else None
        check(m and int(m.group(1)) < 8, f"forks under RLIMIT_NPROC=8: {msgs}")
        w.check_clean()


@case("a forbidden syscall (io_uring_setup) kills the program with SIGSYS; the client gets "
      "1011 naming it, and the log too")
def forbidden_syscall_kills():
    w = srv()
    with connect(w, "/uring.py") as c:
        msgs, f = messages_until_close(c)
        check(msgs == [(OP_TEXT, b"before")], f"messages: {msgs}")
        check(f.close_code() == 1011 and f.payload[2:] == b"killed by signal 31 (SIGSYS)",
              f"close {f.close_code()} {f.payload[2:]!r}")
        cid = int(w.open_line(c.local_port)["conn"])
    check(grep(w, f"program conn={cid} pid="), "log")
    check(any("killed by signal 31 (SIGSYS)" in l for l in grep(w, f"program conn={cid} ")),
          "the SIGSYS is logged")


# ---------------------------------------------------------------------------------------------
# configuration


@case("bad exec configuration stops startup with one line naming the variable, exit 2")
def bad_config():
    cases = [({"WSD_HANDLER": "exec"}, "WSD_EXEC"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "/nonexistent/prog"}, "WSD_EXEC"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": f"{DIR}/noexec.sh"}, "WSD_EXEC"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "cat 'open"}, "WSD_EXEC"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "cat | grep x"}, "WSD_EXEC"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "cat", "WSD_EXEC_DIR": DIR}, "WSD_EXEC_DIR"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC_DIR": "/nonexistent"}, "WSD_EXEC_DIR"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "cat", "WSD_USER": "no-such-user"}, "WSD_USER"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "cat", "WSD_EXEC_RLIMIT_NOFILE": "99999"},
              "WSD_EXEC_RLIMIT_NOFILE"),
             ({"WSD_HANDLER": "exec", "WSD_EXEC": "cat", "WSD_EXEC_PASSENV": "HTTP_HOST"},
              "WSD_EXEC_PASSENV"),
             ({"WSD_EXEC": "cat"}, "WSD_HANDLER"),
             ({"WSD_EXEC_STDERR": "file"}, "WSD_EXEC_STDERR"),
             ({"WSD_SANDBOX": "maybe"}, "WSD_SANDBOX")]
    for env_over, name in cases:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSD_")}
        env.update(env_over, WSD_LISTEN="127.0.0.1:0")
        p = subprocess.run([WSD_BIN], env=env, capture_output=True, timeout=5 * SLOW)
        err = p.stderr.decode()
        check(p.returncode == 2, f"{env_over}: exit {p.returncode}, stderr {err!r}")
        check(err.count("\n") == 1 and f"invalid {name}=" in err, f"{env_over}: {err!r}")


@case("teardown: the shared instance is clean and stops cleanly")
def teardown():
    srv.finish()


run()
