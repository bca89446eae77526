#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The kill path keeps the next kill fast: a terminated worker that will exit moves to
SCHED_IDLE once its close frame is out (its teardown yields to everyone else), a reused one
keeps its normal policy and serves on, the pool refills one spawn per turn of the loop and
still reaches WSD_POOL_MIN, and a wsctl request is answered on the connection's first event.
Scheduling policies are read from /proc/PID/stat, never timed."""

from wsdtest import (OP_CLOSE, Wsd, case, check, conn_id, local_port, pid_gone, recv_within,
                     run, wait_until, ws_connect, wsctl)

SCHED_OTHER, SCHED_IDLE = 0, 5


def policy(pid):
    """The scheduling policy of pid (field 41 of /proc/PID/stat), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[38])  # fields after "(comm)" start at 3


def opened(w, c):
    """Handshake, one echo; returns (conn id, worker pid)."""
    c.handshake()
    c.send_frame(0x1, b"hi")
    check(c.recv_message()[1] == b"hi", "echo")
    return conn_id(w, c.local_port), w.worker_of(c.local_port)


def close_frame(c):
    f = c.recv_frame(3)
    check(f.opcode == OP_CLOSE, f"want the close frame, got {f!r}")
    return f


@case("a killed worker that exits afterwards is SCHED_IDLE while it waits for the client's "
      "close; its neighbours and the idle pool stay SCHED_OTHER")
def killed_worker_yields():
    with Wsd() as w:
        with w.raw() as victim, w.raw() as neighbour:
            cid, pid = opened(w, victim)
            _, npid = opened(w, neighbour)
            check(policy(pid) == SCHED_OTHER, f"worker {pid} before the kill: {policy(pid)}")
            rc, _, err = wsctl(w, "kill", cid, "--code", "4001")
            check(rc == 0, f"wsctl kill: {rc} {err}")
            f = close_frame(victim)  # not answered yet: the worker waits for ours
            check(f.close_code() == 4001, f"close code {f.close_code()}")
            wait_until(lambda: policy(pid) == SCHED_IDLE, 3,
                       f"worker {pid} to be SCHED_IDLE (policy now {policy(pid)})")
            check(policy(npid) == SCHED_OTHER, f"the neighbour {npid}: {policy(npid)}")
            idle = w.idle_workers()
            check(idle and all(policy(p) == SCHED_OTHER for p in idle),
                  f"idle workers' policies: {[(p, policy(p)) for p in idle]}")
            victim.send_frame(OP_CLOSE, f.payload[:2])
            victim.expect_eof()
            victim.close()
            wait_until(lambda: pid_gone(pid), 10, f"worker {pid} to exit")
            neighbour.send_frame(0x1, b"still here")
            check(neighbour.recv_message()[1] == b"still here", "the neighbour's echo")
        w.check_clean()


@case("WSD_WORKER_REUSE: a killed worker that will serve again keeps SCHED_OTHER and goes back "
      "to the idle pool")
def reused_worker_keeps_policy():
    with Wsd(env={"WSD_WORKER_REUSE": "10", "WSD_POOL_MIN": "1"}) as w:
        with w.raw() as c:
            cid, pid = opened(w, c)
            rc, _, err = wsctl(w, "kill", cid)
            check(rc == 0, f"wsctl kill: {rc} {err}")
            f = close_frame(c)
            check(policy(pid) == SCHED_OTHER, f"reused worker {pid}: policy {policy(pid)}")
            c.send_frame(OP_CLOSE, f.payload[:2])
            c.expect_eof()
        wait_until(lambda: pid in w.idle_workers(), 3, f"worker {pid} back in the idle pool")
        check(policy(pid) == SCHED_OTHER, f"idle again: policy {policy(pid)}")
        w.wait_no_zombies()  # several idle workers are normal with reuse: no check_clean


@case("after kills of more connections than WSD_POOL_MIN the pool is refilled to WSD_POOL_MIN, "
      "one spawn per turn, and every kill was answered")
async def pool_refilled_after_kills():
    with Wsd(env={"WSD_POOL_MIN": "3"}) as w:
        conns = [await ws_connect(w, f"/k{i}") for i in range(8)]
        try:
            ids = []
            for ws in conns:
                await ws.send("x")
                await recv_within(ws)
                ids.append(conn_id(w, local_port(ws)))
            for cid in ids:
                rc, out, err = wsctl(w, "kill", cid)
                check(rc == 0 and "closing 1 connection" in out, f"kill {cid}: {rc} {out} {err}")
            for ws in conns:
                await ws.wait_closed()
                check(ws.close_code == 1008, f"close code {ws.close_code}")
        finally:
            for ws in conns:
                await ws.close()
        w.check_clean()


if __name__ == "__main__":
    run()
