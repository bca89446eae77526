#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""wsd's RFC 6455 / RFC 7692 conformance suite: starts wsd ($WSD_BIN, default build/wsd) twice
on 127.0.0.1 port 0 (permessage-deflate on, and WSD_DEFLATE=off), runs every case of
cases.py against it with a raw-socket client, prints TAP ("ok N - id desc") with a
per-section table as comments, stops both servers and checks that no process is left and
that their logs hold no crash or sanitizer report. Exit 0 only if every case passed.
Usage: test_conformance.py [ID_PREFIX ...]   (e.g. 6.4 13.11 to run only those)"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from cases import CASES  # noqa: E402
from wsclient import Fail  # noqa: E402

MAX_MESSAGE = 1048576
MAX_FRAGMENTS = 65536
CASE_TIMEOUT_S = 30
JOBS = 4  # cases in flight at once: each is its own connection, so its own worker
BAD_LOG = re.compile(r"crashed|AddressSanitizer|runtime error|LeakSanitizer|core dumped")


class Server:
    """One wsd, started on port 0; the port comes from its "listening on" line."""

    def __init__(self, tmp, name, extra_env):
        self.name = name
        self.log_path = os.path.join(tmp, name + ".log")
        env = dict(os.environ)
        env.update({
            "WSD_LISTEN": "127.0.0.1:0",
            "WSD_CONTROL_SOCKET": os.path.join(tmp, name + ".sock"),
            "WSD_MAX_MESSAGE": str(MAX_MESSAGE),
            "WSD_MAX_FRAGMENTS": str(MAX_FRAGMENTS),
            "WSD_ABUSE_LIMIT": "0",       # the suite commits hundreds of violations on purpose
            "WSD_MAX_CONNS_PER_IP": "0",
            "WSD_PING_INTERVAL_MS": "0",  # no unsolicited pings: every frame is accounted for
            "WSD_CLOSE_TIMEOUT_MS": "2000",
            "WSD_POOL_MIN": str(JOBS + 2),
            "WSD_LOG_LEVEL": "notice",
        })
        env.update(extra_env)
        binary = os.environ.get("WSD_BIN", os.path.join(ROOT, "build", "wsd"))
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([binary], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.port is None:
            with open(self.log_path) as f:
                m = re.search(r"listening on ws://127\.0\.0\.1:(\d+)/", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("%s did not start: %s" % (name, self.read_log()))

    def descendants(self):
        """Every process below wsd (workers, acceptor), from /proc."""
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        st = f.read()
                    parent[int(d)] = int(st[st.rindex(")") + 2:].split()[1])
                except (OSError, ValueError):
                    pass
        out, todo = set(), [self.proc.pid]
        while todo:
            p = todo.pop()
            for child, par in parent.items():
                if par == p and child not in out:
                    out.add(child)
                    todo.append(child)
        return out

    def stop(self):
        """SIGTERM, wait up to 10 s, then SIGKILL. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()


def run_case(env, cid, fn):
    t0 = time.monotonic()
    try:
        fn(env)
        return cid, None, time.monotonic() - t0
    except Fail as e:
        return cid, str(e), time.monotonic() - t0
    except Exception as e:  # a bug in the case or a socket error: still a failure
        return cid, "%s: %s" % (type(e).__name__, e), time.monotonic() - t0


def section(cid):
    return cid.split(".")[0]


SECTION_NAMES = {"1": "framing", "2": "pings/pongs", "3": "reserved bits", "4": "opcodes",
                 "5": "fragmentation", "6": "UTF-8", "7": "close handling", "9": "limits",
                 "10": "auto-fragmentation", "12": "deflate messages",
                 "13": "deflate parameters"}


class Env:
    pass


def main(argv):
    prefixes = argv[1:]
    cases = [c for c in CASES if not prefixes or any(c[0] == p or c[0].startswith(p + ".")
                                                     for p in prefixes)]
    ids = [c[0] for c in CASES]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        print("Bail out! duplicate case ids: %s" % sorted(dup))
        return 1
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="wsd-conformance-")
    servers = []
    try:
        servers.append(Server(tmp, "wsd-deflate", {}))
        servers.append(Server(tmp, "wsd-nodeflate", {"WSD_DEFLATE": "off"}))
    except (RuntimeError, OSError) as e:
        for s in servers:
            s.stop()
        print("Bail out! %s" % e)
        return 1
    env = Env()
    env.port, env.port_off = servers[0].port, servers[1].port
    env.max_message, env.max_fragments = MAX_MESSAGE, MAX_FRAGMENTS

    try:
        return run_all(env, cases, servers, tmp, t_start)
    finally:
        for s in servers:
            s.stop()  # idempotent: only acts when something above went wrong


def run_all(env, cases, servers, tmp, t_start):
    extra = ["server exits 0 on SIGTERM and leaves no process", "server logs: no crash or "
             "sanitizer report"]
    print("1..%d" % (len(cases) + len(extra)))
    results = OrderedDict()
    failed = []
    n = 0
    with ThreadPoolExecutor(JOBS) as pool:
        futures = [pool.submit(run_case, env, cid, fn) for cid, _d, fn in cases]
        for (cid, desc, _fn), fut in zip(cases, futures):
            try:
                _cid, err, dt = fut.result(timeout=CASE_TIMEOUT_S + 30)
            except Exception as e:
                err, dt = "no result: %s" % e, 0
            n += 1
            results[cid] = err
            if err is None:
                print("ok %d - %s %s" % (n, cid, desc))
            else:
                failed.append((cid, desc, err))
                print("not ok %d - %s %s" % (n, cid, desc))
                print("#   %s" % err)
            sys.stdout.flush()

    # Stop both servers; every process they started must be gone too.
    kids = set()
    for s in servers:
        kids |= s.descendants()
    codes = [s.stop() for s in servers]
    deadline = time.monotonic() + 5
    left = kids
    while left and time.monotonic() < deadline:
        left = {p for p in left if os.path.exists("/proc/%d" % p)}
        time.sleep(0.05)
    n += 1
    if codes == [0, 0] and not left:
        print("ok %d - %s" % (n, extra[0]))
    else:
        failed.append(("stop", extra[0], "exit codes %s, left %s" % (codes, sorted(left))))
        print("not ok %d - %s\n#   exit codes %s, processes left %s" % (n, extra[0], codes,
                                                                           sorted(left)))
    bad = [line for s in servers for line in s.read_log().splitlines() if BAD_LOG.search(line)]
    n += 1
    if not bad:
        print("ok %d - %s" % (n, extra[1]))
    else:
        failed.append(("logs", extra[1], bad[0]))
        print("not ok %d - %s" % (n, extra[1]))
        for line in bad[:10]:
            print("#   %s" % line)

    # The per-section table.
    print("#")
    print("# %-8s %-20s %6s %6s %6s" % ("section", "", "cases", "pass", "fail"))
    per = OrderedDict()
    for cid, err in results.items():
        row = per.setdefault(section(cid), [0, 0])
        row[0 if err is None else 1] += 1
    for sec, (ok, bad_n) in per.items():
        print("# %-8s %-20s %6d %6d %6d" % (sec, SECTION_NAMES.get(sec, ""), ok + bad_n, ok,
                                            bad_n))
    print("# %d cases in %.1f s; %d failed" % (len(results), time.monotonic() - t_start,
                                               len(failed)))
    for cid, desc, err in failed:
        print("# FAILED %s %s: %s" % (cid, desc, err))
    if failed:
        print("# server logs kept in %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
