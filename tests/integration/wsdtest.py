# SPDX-License-Identifier: MIT
"""wsdtest: the integration tests' harness.

- TAP output: register cases with @case("name"), end the file with run(); each case prints
  `ok N - name`, `not ok N - name` plus `# ` diagnostics, or `ok N - name # SKIP reason`
  (raise Skip("reason")). A case may be a plain function or a coroutine function; each runs under
  a watchdog (asyncio.wait_for, or SIGALRM for plain functions).
- Wsd: starts $WSD_BIN with a given environment (WSD_LISTEN=127.0.0.1:0 unless told), parses the
  port from the `listening on ws://HOST:PORT/` line, and looks at its process tree through /proc.
  stop() sends SIGTERM and asserts exit status 0, no process of this instance left, no sanitizer
  report in its log.
- RawWs: a raw-socket WebSocket client for what real clients refuse to send (bad handshakes, bad
  frames, pipelining), and HTTP response parsing.

Runs with Debian's /usr/bin/python3 (python3-websockets 10.4). Only 127.0.0.1 and ::1.
"""

import asyncio
import base64
import hashlib
import inspect
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
WSD_BIN = os.path.realpath(os.environ.get("WSD_BIN") or os.path.join(REPO, "build", "wsd"))

# Slower under sanitizers: scale every bound by WSD_TEST_SLOW (e.g. 2) if needed.
SLOW = float(os.environ.get("WSD_TEST_SLOW", "1"))
CASE_TIMEOUT = 30 * SLOW
START_TIMEOUT = 5 * SLOW
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# --------------------------------------------------------------------------------------------
# TAP cases


class Skip(Exception):
    """Raise in a case to report it skipped, with the reason."""


class CaseTimeout(Exception):
    pass


_cases = []
_instances = []  # every Wsd started in this file: killed at exit if a case left one running


def case(name, timeout=None):
    """Register a test case (a function or a coroutine function) under a TAP name."""

    def deco(fn):
        _cases.append((name, fn, timeout or CASE_TIMEOUT))
        return fn

    return deco


def _diag(text):
    for line in str(text).rstrip("\n").splitlines() or [""]:
        print("# " + line, flush=True)


def _on_alarm(signum, frame):
    raise CaseTimeout("case watchdog fired")


def run():
    """Run every registered case in order, print TAP, exit 1 if any failed."""
    only = os.environ.get("WSD_TEST_ONLY")  # a substring: run only the matching cases
    cases = [c for c in _cases if not only or only in c[0]]
    print(f"1..{len(cases)}", flush=True)
    failed = 0
    signal.signal(signal.SIGALRM, _on_alarm)
    for n, (name, fn, limit) in enumerate(cases, 1):
        name = name.replace("#", "\\#")  # a bare # would start a TAP directive
        t0 = time.monotonic()
        try:
            if inspect.iscoroutinefunction(fn):
                # the alarm is a backstop for a loop blocked in a synchronous call
                signal.alarm(int(limit) + 10)
                asyncio.run(_bounded(fn, limit))
            else:
                signal.alarm(int(limit))
                fn()
            signal.alarm(0)
            print(f"ok {n} - {name}", flush=True)
        except Skip as e:
            signal.alarm(0)
            print(f"ok {n} - {name} # SKIP {e}", flush=True)
        except BaseException as e:  # noqa: B902 -- a case may raise anything, even SystemExit
            signal.alarm(0)
            failed += 1
            print(f"not ok {n} - {name}", flush=True)
            if isinstance(e, (CaseTimeout, asyncio.TimeoutError)) and time.monotonic() - t0 >= limit:
                _diag(f"timed out after {limit:.0f} s")
            _diag("".join(traceback.format_exception(type(e), e, e.__traceback__)))
            if isinstance(e, KeyboardInterrupt):
                break
    leftover = [w for w in _instances if w.running()]
    for w in leftover:
        if not only:  # with WSD_TEST_ONLY the shared instance's teardown case may not have run
            _diag(f"a case left wsd pid {w.pid} running: killing it")
        w.kill()
    sys.exit(1 if failed or (leftover and not only) else 0)


async def _bounded(fn, limit):
    try:
        await asyncio.wait_for(fn(), limit)
    except asyncio.TimeoutError:
        raise CaseTimeout(f"case did not finish within {limit:.0f} s") from None


# --------------------------------------------------------------------------------------------
# small helpers


class Fail(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def wait_until(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value; fail with `what` and the last value."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail(f"timed out after {timeout * SLOW:.1f} s waiting for {what} (last: {v!r})")
        time.sleep(interval)


async def await_until(pred, timeout, what, interval=0.02):
    """wait_until for coroutines: lets the event loop run between polls."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail(f"timed out after {timeout * SLOW:.1f} s waiting for {what} (last: {v!r})")
        await asyncio.sleep(interval)


def text_of(n):
    """Exactly n bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte characters."""
    unit = "aé€😀"  # 1 + 2 + 3 + 4 bytes
    s = unit * (n // 10) if n >= 10 else ""
    rest = n - len(s.encode())
    s += "a" * rest
    assert len(s.encode()) == n
    return s


def bytes_of(n, seed=0):
    """n pseudo-random (reproducible) bytes."""
    return random.Random(n * 1000003 + seed).randbytes(n)


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def kv(line):
    """The key=value fields of a log line."""
    return dict(re.findall(r"(\w+)=(\S+)", line))


# --------------------------------------------------------------------------------------------
# /proc


def proc_fields(pid):
    """Every field of /proc/PID/status as text ({'Name': 'wsd', 'CapEff': '00000...', ...}), or
    None if the process is gone. pid may be "self"."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def proc_status(pid):
    """{'Name':..., 'State': 'S', 'PPid': int} or None if the process is gone."""
    d = proc_fields(pid)
    if d is None:
        return None
    return {"Name": d.get("Name", ""), "State": d.get("State", "?")[:1], "PPid": int(d.get("PPid", "0"))}


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    st = proc_status(pid)
    return st is not None and st["State"] != "Z"


def pid_gone(pid):
    """True if pid no longer exists at all (exited and reaped)."""
    return proc_status(pid) is None


def marked_pids(marker):
    """Processes whose initial environment holds WSD_TEST_INSTANCE=marker: one wsd instance's
    supervisor, acceptor and workers (clones keep the environment), and nothing else, so a wsd
    someone else runs from the same binary is never counted."""
    needle = f"WSD_TEST_INSTANCE={marker}".encode()
    out = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            out.append(pid)
    return out


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def pidfd_pids(pid):
    """The pids pid holds a pidfd of (the Pid: line of each pidfd's fdinfo)."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[pidfd]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                out.update(int(l.split()[1]) for l in f if l.startswith("Pid:"))
        except (OSError, ValueError, IndexError):
            pass
    return out


def _become_subreaper():
    """Orphans of a wsd killed by a test (its workers) are reparented to this process instead
    of PID 1, which in a container may never reap them; kill() reaps them by pid."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pids, timeout=3):
    """waitpid() each pid that became this process's child; others are not ours to reap."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            st = proc_status(pid)
            if st is None:
                pending.discard(pid)
                continue
            if st["PPid"] != os.getpid():
                if st["State"] != "Z":
                    continue  # still dying, or not reparented yet
                pending.discard(pid)  # someone else's zombie now
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pending.discard(pid)
        time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# systemd's side: passed sockets and the notify socket


def with_listen_fds(argv, env, fds, listen_pid="$$"):
    """(argv, Popen kwargs) that start argv with fds [(fd, name), ...] at 3, 4, ... and
    LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID in env, as systemd passes sockets. LISTEN_PID must be
    the pid of the process that execs wsd: a shell sets it to its own pid ($$) and execs (a
    test of a LISTEN_PID meant for another process passes another listen_pid)."""
    env["LISTEN_FDS"] = str(len(fds))
    env["LISTEN_FDNAMES"] = ":".join(name for _, name in fds)
    src = [fd for fd, _ in fds]

    def place():
        # lift first so that placing one never overwrites another that is still to be placed
        high = [os.dup(fd) for fd in src]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)  # dup2 leaves the copy inheritable
            os.close(fd)

    # with WATCHDOG_USEC, systemd also names the main pid in WATCHDOG_PID (unless a test set one)
    shell = (f'LISTEN_PID={listen_pid}; export LISTEN_PID; '
             'if [ -n "$WATCHDOG_USEC" ] && [ -z "$WATCHDOG_PID" ]; then '
             'WATCHDOG_PID=$$; export WATCHDOG_PID; fi; exec "$0" "$@"')
    return ["/bin/sh", "-c", shell] + argv, {"preexec_fn": place, "close_fds": False}


def tcp_listener(host="127.0.0.1", backlog=128):
    """A bound, listening TCP socket on a free port, as a .socket unit would create it."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(backlog)
    return s


class NotifySocket:
    """A fake NOTIFY_SOCKET: a unix datagram socket in a temporary directory; messages() returns
    each datagram received so far as a dict of its KEY=VALUE lines (in arrival order), plus
    "_PID", the sender's pid as the kernel stamped it (SO_PASSCRED), as systemd checks it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wsdnotify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setblocking(False)
        self.received = []

    def messages(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return self.received
            m = dict(l.split("=", 1) for l in data.decode().splitlines() if "=" in l)
            for level, kind, cred in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    m["_PID"] = str(struct.unpack("iII", cred[:12])[0])
            self.received.append(m)

    def wait_for(self, key, timeout=5, value=None, after=0):
        """The first message from index `after` on that has key (with value, if given)."""
        def find():
            for m in self.messages()[after:]:
                if key in m and (value is None or m[key] == value):
                    return m
            return None
        return wait_until(find, timeout * SLOW, f"a {key}{'=' + value if value else ''} "
                          f"notification (got {self.messages()[after:]})")

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --------------------------------------------------------------------------------------------
# wsd


class Wsd:
    """One wsd instance. Use as a context manager, or call start()/stop()."""

    def __init__(self, env=None, listen="127.0.0.1:0", args=(), wait_pool=True, wait_line=True,
                 listen_fds=None, listen_pid="$$", exe=None):
        """wait_line=False (for log levels that hide the `listening` line) needs a fixed port in
        listen: readiness is then a successful TCP connect. listen_fds=[(fd, name), ...] passes
        those fds the way systemd does: at 3, 4, ... with LISTEN_FDS, LISTEN_FDNAMES and
        LISTEN_PID set to wsd's own pid. exe: run this binary instead of WSD_BIN."""
        self.env_over = dict(env or {})
        self.wait_line = wait_line
        self.listen = listen
        self.args = list(args)
        self.wait_pool_at_start = wait_pool
        self.proc = None
        self.pid = None
        self.port = None
        self.host = None
        self.marker = uuid.uuid4().hex
        self.tmp = None
        self.fd_baseline = None
        self.acceptor_fd_baseline = None
        self.acceptor_at_start = None
        self.stopped = False
        self.expected_crashes = set()
        self.listen_fds = list(listen_fds or [])
        self.listen_pid = listen_pid
        self.exe = exe or WSD_BIN

    # ---- lifecycle

    @property
    def pool_min(self):
        return int(self.env_over.get("WSD_POOL_MIN") or 4)

    @property
    def grace_ms(self):
        return int(self.env_over.get("WSD_SHUTDOWN_GRACE_MS") or 5000)

    def start(self):
        check(os.access(self.exe, os.X_OK), f"{self.exe} is not an executable")
        _become_subreaper()  # here, not at import: the conformance client imports this module
        self.tmp = tempfile.mkdtemp(prefix="wsdtest-")
        # only what the case sets: a WSD_ variable in the caller's environment changes nothing
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSD_")}
        env["WSD_LISTEN"] = self.listen
        env["WSD_CONTROL_SOCKET"] = os.path.join(self.tmp, "ctl.sock")
        for k, v in self.env_over.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        env["WSD_TEST_INSTANCE"] = self.marker
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self._log = open(self.log_path, "wb")
        argv, extra = [self.exe] + self.args, {}
        if self.listen_fds:
            argv, extra = with_listen_fds(argv, env, self.listen_fds, self.listen_pid)
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, **extra)
        self.pid = self.proc.pid
        _instances.append(self)
        try:
            if self.wait_line:
                m = wait_until(self._listening, START_TIMEOUT,
                               "the 'listening on ws://HOST:PORT/' line")
                self.host, self.port = m
            else:
                host, _, port = self.listen.rpartition(":")
                self.host, self.port = host.strip("[]"), int(port)
                wait_until(self._connectable, START_TIMEOUT, f"a TCP connect to {self.listen}")
            if self.wait_pool_at_start:
                self.wait_idle()
            self.fd_baseline = self.fd_count()
            self.baseline_acceptor()
        except BaseException:
            self.kill()
            raise
        return self

    def baseline_acceptor(self):
        """Note the acceptor and its fd count once it is set up (its io_uring ring exists: the
        pool can be warm before that, and a count taken earlier would be one short)."""
        acc = self.acceptor()
        if acc:
            wait_until(lambda: "io_uring" in self._fd_list(acc) or not pid_alive(acc),
                       START_TIMEOUT, f"the acceptor pid {acc} to set up its ring")
        self.acceptor_at_start = acc
        self.acceptor_fd_baseline = fd_count(acc) if acc else None

    def _listening(self):
        if self.proc.poll() is not None:
            raise Fail(f"wsd exited with status {self.proc.returncode} before listening:\n"
                       + self.log_tail())
        m = re.search(r"listening on ws://(\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)/", self.log())
        if not m:
            return None
        host = m.group(1).strip("[]")
        return host, int(m.group(2))

    def _connectable(self):
        if self.proc.poll() is not None:
            raise Fail(f"wsd exited with status {self.proc.returncode} before listening:\n"
                       + self.log_tail())
        try:
            s = socket.create_connection((self.host, self.port), 1)
        except OSError:
            return False
        # Wait for the acceptor to close its end (EOF here): its fd count, taken next as its
        # baseline, must not include this probe's connection.
        with s:
            try:
                s.shutdown(socket.SHUT_WR)
                while s.recv(4096):
                    pass
            except OSError:
                pass
        return True

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        if et is None or issubclass(et, Skip):
            self.stop()  # a failure here replaces the Skip: wsd misbehaved
        else:
            self.kill()
        return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=None, status=0):
        """Send sig, wait (bounded), assert the exit status, that nothing of this instance is
        left and that no sanitizer reported anything; removes the temporary directory."""
        if timeout is None:
            timeout = self.grace_ms / 1000 + 5
        try:
            if self.running():
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                raise Fail(f"wsd pid {self.pid} still running {timeout * SLOW:.1f} s after "
                           f"{signal.Signals(sig).name}:\n" + self.log_tail()) from None
            check(self.proc.returncode == status,
                  f"wsd exit status {self.proc.returncode} (want {status}) after "
                  f"{signal.Signals(sig).name}:\n" + self.log_tail())
            left = []
            try:
                wait_until(lambda: not self.leftovers(), 3, "every wsd process to be gone")
            except Fail:
                left = self.leftovers()
            check(not left, f"processes left after wsd exited: {self.describe(left)}")
            self.check_sanitizers()
        except BaseException:
            self.kill()
            raise
        self.stopped = True
        self._log.close()
        if os.environ.get("WSD_TEST_KEEP"):
            print(f"# kept {self.tmp}", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def kill(self):
        """SIGKILL this instance and whatever it left; for cleanup after a failure. The end of
        its log goes to the TAP diagnostics (WSD_TEST_KEEP=1 keeps the whole temporary
        directory instead of removing it). The orphaned workers are reparented
        to this process (a child subreaper, see below) and reaped here, so no zombie is left even
        where PID 1 does not reap."""
        if self.proc is None:
            return
        orphans = set(self.leftovers()) | {p for p, _, _ in self.children()}
        orphans.discard(self.pid)
        for pid in [self.pid] + self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 3
        while self.leftovers() and time.monotonic() < deadline:
            for pid in self.leftovers():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        _reap(orphans)
        self.stopped = True
        if self.tmp and os.path.isdir(self.tmp):
            _diag(f"wsd pid {self.pid} killed; the end of its log:\n{self.log_tail(25)}")
            self._log.close()
            if os.environ.get("WSD_TEST_KEEP"):
                _diag(f"kept {self.tmp}")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def leftovers(self):
        """Live processes of this instance other than a reaped supervisor."""
        pids = [p for p in marked_pids(self.marker) if p != os.getpid()]
        if self.proc is not None and self.proc.poll() is not None:
            pids = [p for p in pids if p != self.pid]
        return pids

    def expect_crash(self, pid):
        """A case that crashes a worker on purpose (kill -SEGV) names it: under AddressSanitizer
        that worker's DEADLYSIGNAL report is then expected, not a failure."""
        self.expected_crashes.add(int(pid))

    def check_sanitizers(self):
        """Fail on any sanitizer report in the log, except the reports of workers a case crashed
        on purpose (expect_crash)."""
        text = self.log()
        for m in re.finditer(r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|"
                             r"runtime error:|SUMMARY: UndefinedBehaviorSanitizer", text):
            line_start = text.rfind("\n", 0, m.start()) + 1
            pm = re.match(r"==(\d+)==", text[line_start:m.start()])
            if pm and int(pm.group(1)) in self.expected_crashes and "DEADLYSIGNAL" in \
                    text[max(0, line_start - 200):line_start]:
                continue
            i = m.start()
            raise Fail(f"sanitizer report in wsd's log:\n{text[max(0, i - 500):i + 3000]}")

    # ---- log

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.log().splitlines()

    def log_tail(self, n=40):
        return "\n".join("  | " + l for l in self.log_lines()[-n:])

    def lines_with(self, word):
        """Log lines whose message starts with `word ` (e.g. 'open', 'close', 'refused')."""
        rx = re.compile(r"(?:^|: )" + re.escape(word) + r" ")
        return [l for l in self.log_lines() if rx.search(l)]

    def _peer_line(self, word, port):
        for l in self.lines_with(word):
            peer = kv(l).get("peer", "")
            if peer.rsplit(":", 1)[-1] == str(port):
                return l
        return None

    def open_line(self, local_port, timeout=5):
        """The `open` line of the connection whose client port is local_port, as a dict."""
        l = wait_until(lambda: self._peer_line("open", local_port), timeout,
                       f"the 'open ... peer=...:{local_port}' log line")
        return kv(l)

    def close_line(self, local_port, timeout=5):
        l = wait_until(lambda: self._peer_line("close", local_port), timeout,
                       f"the 'close ... peer=...:{local_port}' log line")
        return kv(l)

    def worker_of(self, local_port, timeout=5):
        """The pid of the worker serving the client whose local port is local_port."""
        return int(self.open_line(local_port, timeout)["pid"])

    def busy_pids(self):
        """Workers that logged `open` and not yet `close`."""
        opened, closed = set(), set()
        for l in self.log_lines():
            f = kv(l)
            if "pid" in f and re.search(r": open conn=", l):
                opened.add(int(f["pid"]))
            elif "pid" in f and re.search(r": close conn=", l):
                closed.add(int(f["pid"]))
        return opened - closed

    # ---- process tree

    def children(self):
        """[(pid, comm, state)] of the supervisor's children (zombies included)."""
        out = []
        for pid in all_pids():
            st = proc_status(pid)
            if st and st["PPid"] == self.pid:
                out.append((pid, st["Name"], st["State"]))
        return out

    def workers(self):
        """Live (non-zombie) wsd-worker children."""
        return sorted(p for p, c, s in self.children() if c == "wsd-worker" and s != "Z")

    def idle_workers(self):
        busy = self.busy_pids()
        return [p for p in self.workers() if p not in busy]

    def acceptor(self):
        acc = [p for p, c, s in self.children() if c == "wsd-acceptor" and s != "Z"]
        return acc[0] if len(acc) == 1 else None

    def zombies(self):
        return [(p, c) for p, c, s in self.children() if s == "Z"]

    def fd_count(self):
        return fd_count(self.pid)

    def describe(self, pids):
        out = []
        for p in pids:
            st = proc_status(p)
            out.append(f"{p}({st['Name']},{st['State']},ppid={st['PPid']})" if st else f"{p}(gone)")
        return ", ".join(out) or "none"

    def wait_idle(self, n=None, timeout=5):
        """Wait until exactly n (default WSD_POOL_MIN) idle workers and one acceptor exist, and
        wsd holds each worker's pidfd: the template clones a worker (CLONE_PARENT) before its
        pidfd reaches wsd, and an fd count taken in between is one short."""
        n = self.pool_min if n is None else n
        wait_until(lambda: self.acceptor() is not None and len(self.idle_workers()) == n and
                   set(self.workers()) <= pidfd_pids(self.pid), timeout,
                   f"{n} idle wsd-worker children, one wsd-acceptor and their pidfds in wsd"
                   f" (children now: {self.children()}, pidfds of: {pidfd_pids(self.pid)})")

    def wait_no_zombies(self, timeout=3):
        """Zombies are normal for an instant (exited, not yet reaped); not for long."""
        wait_until(lambda: not self.zombies(), timeout, f"no zombie children ({self.zombies()})")

    def check_clean(self, timeout=5):
        """No connection open: the pool is back to WSD_POOL_MIN idle workers and no busy one is
        left, no zombie, and the supervisor's (and an unrestarted acceptor's) fd count is back
        to its value at start."""
        check(self.running(), "wsd is not running:\n" + self.log_tail())
        self.wait_no_zombies(timeout)
        wait_until(lambda: len(self.workers()) == self.pool_min and self.acceptor(), timeout,
                   f"the workers to be back to WSD_POOL_MIN={self.pool_min} "
                   f"(children: {self.children()}, busy per log: {sorted(self.busy_pids())})")
        wait_until(lambda: self.fd_count() == self.fd_baseline, timeout,
                   f"wsd's fd count to return to {self.fd_baseline} (now {self.fd_count()}: "
                   f"{self._fd_list(self.pid)})")
        acc = self.acceptor()
        if acc == self.acceptor_at_start and self.acceptor_fd_baseline is not None:
            wait_until(lambda: fd_count(acc) == self.acceptor_fd_baseline, timeout,
                       f"the acceptor's fd count to return to {self.acceptor_fd_baseline} "
                       f"(now {fd_count(acc)}: {self._fd_list(acc)})")

    @staticmethod
    def _fd_list(pid):
        out = []
        try:
            for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
                try:
                    out.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
                except OSError:
                    pass
        except OSError:
            pass
        return " ".join(out)

    # ---- addresses

    def url(self, path="/"):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{h}:{self.port}{path}"

    def raw(self, timeout=5):
        return RawWs(self.host, self.port, timeout)


# --------------------------------------------------------------------------------------------
# websockets (python3-websockets 10.4) helpers


def ws_connect(w, path="/", **kw):
    """websockets.connect with bounded timeouts, no keepalive pings and no deflate offer unless
    told: the server implements no extension."""
    import websockets

    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 5 * SLOW)
    kw.setdefault("close_timeout", 5 * SLOW)
    return websockets.connect(w.url(path), **kw)


def local_port(ws):
    return ws.local_address[1]


# --------------------------------------------------------------------------------------------
# wsctl


WSCTL = os.path.join(os.path.dirname(WSD_BIN), "wsctl")


def wsctl(w, *args, user=None):
    """Run wsctl against w's control socket: (exit status, stdout, stderr)."""
    cmd = [WSCTL, "-s", w.env_over.get("WSD_CONTROL_SOCKET") or os.path.join(w.tmp, "ctl.sock")]
    cmd += [a if isinstance(a, (str, bytes)) else str(a) for a in args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
    p = subprocess.run(cmd, capture_output=True, timeout=10 * SLOW)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def conn_id(w, port):
    """wsd's id of the connection whose client port is port, from its `open` log line."""
    return int(w.open_line(port)["conn"])


async def recv_within(ws, timeout=5):
    return await asyncio.wait_for(ws.recv(), timeout * SLOW)


async def expect_server_close(ws, timeout=5):
    """Wait for the server to end the connection; return the ConnectionClosed exception (its
    .rcvd is the server's close frame, or None if TCP ended without one)."""
    import websockets

    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout * SLOW)
    except websockets.ConnectionClosed as e:
        await asyncio.wait_for(ws.wait_closed(), timeout * SLOW)
        return e


# --------------------------------------------------------------------------------------------
# raw sockets


def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/", host="127.0.0.1", key=None, version="13", extra=(), omit=(),
                    method="GET", proto="HTTP/1.1"):
    """An upgrade request as bytes. extra: more (name, value) headers; omit: header names (lower
    case) to leave out; version None leaves Sec-WebSocket-Version out."""
    key = key if key is not None else new_key()
    hdrs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key)]
    if version is not None:
        hdrs.append(("Sec-WebSocket-Version", version))
    hdrs = [(k, v) for k, v in hdrs if k.lower() not in omit] + list(extra)
    lines = [f"{method} {path} {proto}"] + [f"{k}: {v}" for k, v in hdrs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None, mask_key=None):
    """One WebSocket frame with the minimal length encoding; length overrides the declared
    payload length; mask_key (4 bytes) replaces the random one."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + _xor(payload, key)


def _xor(data, key):
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Closed(Exception):
    """The server ended the TCP connection."""


class HttpResponse:
    def __init__(self, status, reason, headers, raw, repeated=()):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (the last one if repeated)
        self.raw = raw
        self.repeated = set(repeated)  # lower-case names that came more than once

    def __repr__(self):
        return f"HttpResponse({self.status} {self.reason!r}, {self.headers!r})"


class Frame:
    def __init__(self, fin, rsv, opcode, payload, masked):
        self.fin, self.rsv, self.opcode, self.payload, self.masked = fin, rsv, opcode, payload, masked

    def close_code(self):
        check(self.opcode == OP_CLOSE, f"not a close frame: {self!r}")
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return f"Frame(fin={self.fin}, rsv={self.rsv}, op={self.opcode:#x}, len={len(self.payload)}, {p!r})"


class RawWs:
    """A TCP connection to wsd driven byte by byte."""

    RESET_IS_EOF = True  # a subclass that must tell a reset from a clean TCP close sets False

    def __init__(self, host, port, timeout=5):
        self.sock = socket.create_connection((host, port), timeout * SLOW)
        self.sock.settimeout(timeout * SLOW)
        self.timeout = timeout * SLOW
        self.buf = b""
        self.eof = False

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed by the server")
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(1 << 20)
        except ConnectionResetError:
            if not self.RESET_IS_EOF:
                raise Fail("connection reset by the server") from None
            d = b""
        if not d:
            self.eof = True
            raise Closed("connection closed by the server")
        self.buf += d

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_http(self, timeout=None):
        """Read one HTTP response head; the bytes after it stay buffered."""
        deadline = time.monotonic() + (timeout * SLOW if timeout else self.timeout)
        while b"\r\n\r\n" not in self.buf:
            try:
                self._fill(deadline)
            except Closed:
                raise Closed(f"connection closed before a whole response head; got {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.1 (\d{3}) ?(.*)$", lines[0])
        check(m, f"bad status line {lines[0]!r}")
        headers, repeated = {}, set()
        for l in lines[1:]:
            k, sep, v = l.partition(":")
            check(sep, f"bad header line {l!r}")
            if k.strip().lower() in headers:
                repeated.add(k.strip().lower())
            headers[k.strip().lower()] = v.strip()
        return HttpResponse(int(m.group(1)), m.group(2), headers, head, repeated)

    def handshake(self, path="/", **kw):
        """Send an upgrade request, read the 101, check Sec-WebSocket-Accept."""
        key = kw.pop("key", None) or new_key()
        self.send(upgrade_request(path, key=key, **kw))
        r = self.read_http()
        check(r.status == 101, f"want 101, got {r!r}")
        check(r.headers.get("sec-websocket-accept") == accept_of(key),
              f"Sec-WebSocket-Accept {r.headers.get('sec-websocket-accept')!r}, want {accept_of(key)!r}")
        return r

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, payload, **kw))

    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout * SLOW if timeout else self.timeout)
        b0, b1 = self._take(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
        key = self._take(4, deadline) if b1 & 0x80 else None
        payload = self._take(n, deadline)
        if key:
            payload = _xor(payload, key)
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload, key is not None)
        check(not f.masked, f"the server sent a masked frame (RFC 6455 5.1): {f!r}")
        return f

    def recv_message(self, timeout=None, skip_pings=False):
        """Read frames until one whole data message; return (opcode, payload, pongs seen). With
        skip_pings, the server's pings (a heartbeat) are passed over unanswered."""
        pongs, op, data = [], None, b""
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == OP_PONG:
                pongs.append(f.payload)
                continue
            if f.opcode == OP_PING and skip_pings:
                continue
            check(f.opcode != OP_CLOSE, f"got a close frame instead of a message: {f!r}")
            if op is None:
                check(f.opcode in (OP_TEXT, OP_BINARY), f"want a text or binary frame, got {f!r}")
                op = f.opcode
            else:
                check(f.opcode == OP_CONT, f"want a continuation frame, got {f!r}")
            data += f.payload
            if f.fin:
                return op, data, pongs

    def expect_close(self, code, timeout=None, reply=True):
        """Read until the server's close frame (skipping data frames), check its code (None: an
        empty close; a tuple: any of them), answer it, and check the server ends TCP within
        timeout (default 3 s). Returns the close frame."""
        while True:
            try:
                f = self.recv_frame(timeout)
            except Closed:
                raise Fail(f"TCP ended without a close frame (want close {code})") from None
            if f.opcode == OP_CLOSE:
                break
        got = f.close_code()
        want = code if isinstance(code, tuple) else (code,)
        check(got in want, f"close code {got}, want {code} (close payload {f.payload!r})")
        if len(f.payload) > 2:
            try:
                f.payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise Fail(f"the close reason is not UTF-8: {f.payload!r}") from None
        if reply:
            try:
                self.send_frame(OP_CLOSE, f.payload[:2])
            except OSError:
                pass  # the server may already have closed TCP
        self.expect_eof(timeout or 3)
        return f

    def expect_eof(self, timeout=3):
        """The server ends the TCP connection within timeout; returns the seconds it took.
        Bytes that arrive meanwhile are kept in self.buf."""
        t0 = time.monotonic()
        deadline = t0 + timeout * SLOW
        try:
            while True:
                self._fill(deadline)
        except Closed:
            return time.monotonic() - t0
        except socket.timeout:
            raise Fail(f"the server did not close TCP within {timeout * SLOW:.1f} s") from None


def expect_status(w, request, status, header=None, timeout=3):
    """Send a raw request to w, expect an HTTP status (and optionally a header (name, value or
    None for any)), then the server closing TCP. Returns the response. request is bytes, or a
    list of byte strings sent one by one, which may stop early: the server can answer and
    close before the client is done (e.g. 431 for headers that never end)."""
    with w.raw() as c:
        try:
            for piece in [request] if isinstance(request, bytes) else request:
                c.send(piece)
        except OSError:
            pass  # answered and closed already: the response is still to be read
        r = c.read_http(timeout)
        check(r.status == status, f"want HTTP {status}, got {r.status} {r.reason!r} {r.headers}")
        if header:
            name, value = header
            got = r.headers.get(name.lower())
            check(got is not None, f"the {status} response has no {name} header: {r.headers}")
            check(value is None or got == value, f"{name}: {got!r}, want {value!r}")
        c.expect_eof(timeout)
        return r


def echo_once(w, payload="ping", timeout=5):
    """A raw connection that upgrades, echoes one text message and closes with 1000."""
    with w.raw(timeout) as c:
        c.handshake()
        c.send_frame(OP_TEXT, payload)
        op, data, _ = c.recv_message()
        check((op, data) == (OP_TEXT, payload.encode()), f"echo: got {(op, data)!r}")
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, reply=False)


class Shared:
    """One instance shared by the cases of a file: started by the first case that calls it,
    checked and stopped by finish() (the file's last case)."""

    def __init__(self, **kw):
        self.kw = kw
        self.w = None

    def __call__(self):
        if self.w is None or self.w.stopped:
            self.w = Wsd(**self.kw).start()
        return self.w

    def finish(self):
        w = self()
        try:
            w.check_clean()
        except BaseException:
            w.kill()
            raise
        w.stop()
