#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The worker sandbox (issue 7), seen from inside real workers through the test-probe handler:
the worker template loads the seccomp filter once and every worker inherits it (no worker
loads its own); no_new_privs; Landlock closes the filesystem, TCP bind and connect, signals
and abstract sockets outside the domain; namespaces, mounts, keyrings get EPERM, clone3
ENOSYS; io_uring and ptrace kill the worker with SIGSYS, logged by the supervisor. With
WSD_SANDBOX=off none of it applies; WSD_SECCOMP=off drops only the filter. A killed template
is replaced, and its replacement's workers are sandboxed too; so is one that stops answering, and
a worker it cloned before answering late is kept."""

import ctypes
import os
import re
import shutil
import signal
import socket
import tempfile
import time

from wsdtest import (OP_TEXT, WSD_BIN, Wsd, case, check, close_payload, echo_once, pidfd_pids,
                     proc_fields, proc_status, run, wait_until, wsctl)

PROBE = {"WSD_HANDLER": "test-probe", "WSD_POOL_MIN": "2"}


def template_of(w):
    t = [p for p, c, s in w.children() if c == "wsd-template" and s != "Z"]
    return t[0] if len(t) == 1 else None


def probe(w, *names):
    """Answers to each probe, from one worker."""
    out = []
    with w.raw() as c:
        c.handshake("/")
        for n in names:
            c.send_frame(OP_TEXT, n.encode())
            op, data, _ = c.recv_message()
            out.append(data.decode())
        c.send_frame(0x8, close_payload(1000))
        c.expect_close(1000, reply=False)
    return out


CAPS = ("CapPrm", "CapEff", "CapBnd", "CapAmb", "CapInh")


@case("the template and every worker have no_new_privs and the seccomp filter (Seccomp: 2) "
      "from the template, loaded once before any worker existed; the supervisor and acceptor "
      "have neither; of root's capabilities only the supervisor keeps any (none in the "
      "bounding set of the acceptor, wsd-metrics, the template or a worker)")
def inherited_from_template():
    with Wsd(env=dict(PROBE, WSD_METRICS_LISTEN="127.0.0.1:0")) as w:
        t = template_of(w)
        check(t is not None, f"one wsd-template child: {w.children()}")
        for pid in [t] + w.workers():
            st = proc_fields(pid)
            check(st["NoNewPrivs"] == "1" and st["Seccomp"] == "2" and st["Seccomp_filters"] == "1",
                  f"pid {pid} ({st['Name']}): NoNewPrivs {st['NoNewPrivs']} Seccomp "
                  f"{st['Seccomp']} filters {st['Seccomp_filters']}")
            check(st["PPid"] == str(w.pid), f"worker {pid} is the supervisor's child")
        for pid in [w.pid, w.acceptor()]:
            st = proc_fields(pid)
            check(st["Seccomp"] == "0" and st["NoNewPrivs"] == "0", f"{st['Name']} sandboxed")
        check(int(proc_fields(w.pid)["CapEff"], 16) != 0, "these tests run as root: wsd "
              "holds capabilities")
        metrics = [p for p, c, s in w.children() if c == "wsd-metrics"]
        for pid in [t, w.acceptor()] + metrics + w.workers():
            st = proc_fields(pid)
            held = {k: st[k] for k in CAPS if int(st[k], 16) != 0}
            check(not held, f"pid {pid} ({st['Name']}) holds capabilities: {held}")
        w.check_clean()


@case("run as an unprivileged user given one capability the way a unit's AmbientCapabilities= "
      "does (CAP_SYS_NICE, no CAP_SETPCAP to drop the bounding set with): the supervisor uses "
      "it (SCHED_FIFO), no process below it holds it, and wsd serves")
def ambient_capability_dropped():
    d = tempfile.mkdtemp(prefix="wsdtest-caps-")
    os.chmod(d, 0o1777)  # the control socket's directory, for the unprivileged wsd
    exe = os.path.join(d, "wsd-nobody")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups "
                f"--inh-caps=+sys_nice --ambient-caps=+sys_nice {WSD_BIN} \"$@\"\n")
    os.chmod(exe, 0o755)
    try:
        with Wsd(env=dict(WSD_CONTROL_SOCKET=os.path.join(d, "ctl.sock")), exe=exe) as w:
            sup = proc_fields(w.pid)
            check(sup["Uid"].split()[0] == "65534" and int(sup["CapEff"], 16) == 1 << 23,
                  f"the supervisor: uid {sup['Uid']} CapEff {sup['CapEff']}")
            check(os.sched_getscheduler(w.pid) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO,
                  "the supervisor is not at SCHED_FIFO")
            echo_once(w, "served")
            kids = [p for p, c, st in w.children() if st != "Z"]
            check(len(kids) >= 3, f"children: {w.children()}")
            for pid in kids:
                st = proc_fields(pid)
                if st is None:  # the worker that served the echo, gone since
                    continue
                held = {k: st[k] for k in CAPS if k != "CapBnd" and int(st[k], 16) != 0}
                check(not held, f"pid {pid} ({st['Name']}) holds capabilities: {held}")
            check(not [l for l in w.log_lines() if "capabilities" in l], "a capability error")
            w.check_clean()
    finally:
        shutil.rmtree(d, ignore_errors=True)


@case("inside a worker: Landlock refuses files, TCP bind and connect, signals to the "
      "supervisor and abstract sockets; seccomp refuses namespaces, mounts and keyrings (EPERM) "
      "and clone3 (ENOSYS); a plain fork works; a raw packet socket, which would see every "
      "connection's traffic, is refused (no CAP_NET_RAW, although wsd runs as root)")
def probes_refused():
    with Wsd(env=PROBE) as w:
        name = f"wsdtest-abstract-{os.getpid()}"
        ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ab.bind("\0" + name)
        ab.listen(1)
        try:
            got = probe(w, "nnp", "seccomp", "open /etc/hostname", "bind", f"connect {w.port}",
                        f"abstract {name}", "signal", "unshare", "mount", "clone-newnet",
                        "keyctl", "clone3", "fork", "packet")
        finally:
            ab.close()
        want = ["nnp: 1", "seccomp: 2", "open: EACCES", "bind: EACCES", "connect: EACCES",
                "abstract: EPERM", "signal: EPERM", "unshare: EPERM", "mount: EPERM",
                "clone-newnet: EPERM", "keyctl: EPERM", "clone3: ENOSYS", "fork: ok",
                "packet: EPERM"]
        check(got == want, "probes:\n" + "\n".join(f"  {g!r:28} want {x!r}"
                                                   for g, x in zip(got, want)))
        w.check_clean()


@case("io_uring_setup and ptrace kill the worker with SIGSYS: TCP ends without a close frame "
      "and the supervisor logs the crash as SIGSYS")
def forbidden_kills():
    with Wsd(env=PROBE) as w:
        for name in ["io_uring_setup", "ptrace"]:
            with w.raw() as c:
                c.handshake("/")
                worker = w.worker_of(c.local_port)
                w.expect_crash(worker)
                c.send_frame(OP_TEXT, name.encode())
                c.expect_eof(3)
            line = wait_until(lambda: [l for l in w.log_lines() if f"pid={worker}" in l and
                                       "killed by signal 31 (SIGSYS)" in l], 3,
                              f"the SIGSYS log line for {name}")
            check("cause=crash" in line[0], line[0])
        w.check_clean()


@case("WSD_SANDBOX=off: no no_new_privs, no filter, no Landlock (the worker opens files, "
      "binds, signals); WSD_SECCOMP=off keeps Landlock and no_new_privs but drops the filter")
def sandbox_off():
    with Wsd(env=dict(PROBE, WSD_SANDBOX="off")) as w:
        got = probe(w, "nnp", "seccomp", "open /etc/hostname", "bind", "signal", "clone3")
        check(got == ["nnp: 0", "seccomp: 0", "open: ok", "bind: ok", "signal: ok",
                      "clone3: EINVAL"], f"sandbox off: {got}")
        w.check_clean()
    with Wsd(env=dict(PROBE, WSD_SECCOMP="off")) as w:
        got = probe(w, "nnp", "seccomp", "open /etc/hostname", "unshare", "clone3")
        # unshare fails without the filter too: the worker has no CAP_SYS_ADMIN (caps.h)
        check(got == ["nnp: 1", "seccomp: 0", "open: EACCES", "unshare: EPERM", "clone3: EINVAL"],
              f"seccomp off: {got}")
        w.check_clean()


@case("a killed template is replaced; workers from the new one are sandboxed too, and nothing "
      "is left")
def template_replaced():
    with Wsd(env=PROBE) as w:
        old = template_of(w)
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: proc_status(old) is None, 3, "the old template to be reaped")
        before = set(w.workers())
        for _ in range(3):  # use up the idle workers: the pool refills from a new template
            check(probe(w, "seccomp") == ["seccomp: 2"], "sandboxed worker")
        new = wait_until(lambda: template_of(w), 3, "a new template")
        check(new != old, "the same template")
        fresh = wait_until(lambda: set(w.workers()) - before, 3, "workers from the new template")
        for pid in fresh:
            st = proc_fields(pid)
            check(st["Seccomp"] == "2" and st["NoNewPrivs"] == "1", f"new worker {pid}: {st}")
        check(any("worker template pid=%d killed by signal 9" % old in l for l in w.log_lines()),
              "the template's end is logged")
        w.check_clean()


@case("a template that stops answering is replaced after its 2 s reply timeout: the pool "
      "refills from a new one, and nothing is left", timeout=30)
def template_frozen():
    with Wsd(env=PROBE) as w:
        old = template_of(w)
        os.kill(old, signal.SIGSTOP)  # no clone, no reply: wsd gives up on it and kills it
        check(probe(w, "seccomp") == ["seccomp: 2"], "sandboxed worker")  # one spawn is due now
        wait_until(lambda: proc_status(old) is None, 10, "the frozen template to be reaped")
        new = wait_until(lambda: template_of(w), 5, "a new template")
        check(new != old, "the same template")
        check(any(f"worker template pid={old} did not answer, replacing it" in l
                  for l in w.log_lines()), "the replacement is logged")
        w.check_clean(10)


def ptrace(req, pid, data=0):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    msg = ctypes.c_ulong(0)
    addr = ctypes.addressof(msg) if req == PTRACE_GETEVENTMSG else None
    if libc.ptrace(req, pid, None, addr if addr else data) < 0:
        raise OSError(ctypes.get_errno(), f"ptrace({req}, {pid})")
    return msg.value


PTRACE_SEIZE, PTRACE_DETACH, PTRACE_GETEVENTMSG, PTRACE_O_TRACEFORK = 0x4206, 17, 0x4201, 2
WALL = 0x40000000


@case("a template that answers after the reply timeout: the worker it cloned meanwhile (wsd's "
      "child) is kept with its pidfd, not left running unknown to wsd", timeout=30)
def template_late_reply():
    with Wsd(env=PROBE) as w:
        t = template_of(w)
        ptrace(PTRACE_SEIZE, t, PTRACE_O_TRACEFORK)  # stop it right after its next clone
        try:
            with w.raw() as c:  # takes an idle worker: wsd asks the template for another
                c.handshake("/")
                os.waitpid(t, WALL)  # the fork event: the worker exists, no reply sent yet
                worker = ptrace(PTRACE_GETEVENTMSG, t)
                os.waitpid(worker, WALL)
                ptrace(PTRACE_DETACH, worker)
                time.sleep(2.5)  # past wsd's 2 s wait for the reply; it retires the template
        finally:
            ptrace(PTRACE_DETACH, t)  # it sends its reply now, then exits
        wait_until(lambda: proc_status(t) is None, 5, "the old template to be reaped")
        wait_until(lambda: worker in pidfd_pids(w.pid), 5,
                   f"wsd to hold the late worker {worker}'s pidfd")
        check(any(f"worker template pid={t} did not answer" in l for l in w.log_lines()),
              "the replacement is logged")
        # the late worker serves; the pool refills from a new template (in the fd baseline)
        for _ in range(2):
            check(probe(w, "seccomp") == ["seccomp: 2"], "sandboxed worker")
        wait_until(lambda: template_of(w), 5, "a new template")
        w.check_clean(10)


@case("what a compromised worker leaves is ended and reaped by the 5 s sweep: a "
      "clone(CLONE_PARENT) child with no exit signal (the supervisor's child at once) while its "
      "worker serves on, and a forked child in a process group of its own once the worker has "
      "exited; both logged and counted, and every process of wsd's own lives on", timeout=40)
def escapees_ended():
    with Wsd(env=dict(PROBE, WSD_METRICS_LISTEN="127.0.0.1:0")) as w:
        own = {p for p, c, s in w.children() if s != "Z"}
        check(any(c == "wsd-metrics" for p, c, s in w.children()), f"wsd-metrics: {w.children()}")
        with w.raw() as c:
            c.handshake("/")
            worker = w.worker_of(c.local_port)
            pids = []
            for name in ["escape-parent", "escape-group"]:
                c.send_frame(OP_TEXT, name.encode())
                op, data, _ = c.recv_message()
                m = re.fullmatch(rf"{name}: pid (\d+)", data.decode())
                check(m, f"{name}: {data!r}")
                pids.append(int(m.group(1)))
            parent_child, group_child = pids
            st = proc_status(group_child)
            check(st and st["PPid"] == worker, f"the forked child is the worker's: {st}")
            wait_until(lambda: proc_status(parent_child) is None, 8,
                       "the CLONE_PARENT child to be ended and reaped")
            check(proc_status(worker) is not None, "the worker was ended with it")
            c.send_frame(OP_TEXT, b"nnp")  # and serves on
            check(c.recv_message()[1] == b"nnp: 1", "the worker answers after the sweep")
            c.send_frame(0x8, close_payload(1000))
            c.expect_close(1000, reply=False)
        wait_until(lambda: proc_status(group_child) is None, 8,
                   "the forked child, adopted when its worker exited, to be ended and reaped")
        for pid in pids:
            check(any(f"reaped pid={pid}, a stray left by a worker" in l for l in w.log_lines()),
                  f"the supervisor's line for {pid}")
        rc, out, _ = wsctl(w, "stats")
        counts = dict(l.split(": ", 1) for l in out.splitlines() if ": " in l)
        check(rc == 0 and int(counts.get("strays_reaped", 0)) == 2, f"stats: {out}")
        time.sleep(5.5)  # one more sweep
        gone = [p for p in own - {worker} if proc_status(p) is None]
        check(not gone, f"wsd's own processes ended: {w.describe(gone)}")
        w.check_clean()


run()
