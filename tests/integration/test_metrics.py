#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Metrics, JSON logs and the dashboard's HTTP side (issue 8): the /metrics exposition parses
with Prometheus's own Python parser (python3-prometheus-client) and its counters move exactly
with real traffic from python3-websockets clients, refused handshakes, kills, the heartbeat and
the abuse detector; POST /api/kill is refused without the token (401), from another site or
without WSD_ADMIN_TOKEN (403); WSD_LOG_FORMAT=json gives the close and termination lines the
same fields as text; the admin token is in no child's memory or environment; a killed
wsd-metrics process comes back."""

import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsdtest import (OP_CLOSE, OP_TEXT, SLOW, Wsd, case, check, close_payload, expect_status,  # noqa: E402
                     kv, proc_status, run, upgrade_request, wait_until, ws_connect, recv_within,
                     expect_server_close, local_port, pid_gone, WSD_BIN)

TOKEN = "metrics-test-token-0123456789"
WSCTL = os.path.join(os.path.dirname(WSD_BIN), "wsctl")
BASE = {"WSD_METRICS_LISTEN": "127.0.0.1:0", "WSD_POOL_MIN": "2", "WSD_PING_INTERVAL_MS": "0"}


def metrics_port(w):
    m = wait_until(lambda: re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", w.log()), 5,
                   "the 'metrics on http://...' line")
    return int(m.group(1))


def http_req(w, method, path, body=None, headers=None):
    """One request to the metrics listener: (status, headers dict, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", metrics_port(w), timeout=5 * SLOW)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def scrape(w):
    """{(sample name, ((label, value), ...)): value}, parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    status, hdrs, body = http_req(w, "GET", "/metrics")
    check(status == 200, f"GET /metrics: {status} {body[:200]!r}")
    check(hdrs.get("content-type", "").startswith("text/plain; version=0.0.4"), hdrs)
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def val(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0)


def kill_form(w, cid, code=4001, reason="", headers=None):
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    body = f"id={cid}&code={code}&reason={reason}"
    return http_req(w, "POST", "/api/kill", body=body, headers=h)


def bearer(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def children_by_name(w):
    return {pid: name for pid, name, st in w.children() if st != "Z"}


def memory_hits(pid, needle, around=512):
    """Every place needle is in pid's readable memory (root reads /proc/PID/mem), with `around`
    bytes either side. Mappings of 64 MiB or more are skipped: those are AddressSanitizer's shadow and
    reserved space, never where a string is kept."""
    hits = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            a, b = (int(x, 16) for x in addr.split("-"))
            if "r" not in perms or line.rstrip().endswith("[vvar]") or b - a >= 64 << 20:
                continue
            try:
                mem.seek(a)
                data = mem.read(b - a)
            except (OSError, OverflowError, ValueError):
                continue
            i = data.find(needle)
            while i >= 0:
                hits.append(data[max(0, i - around):i + len(needle) + around])
                i = data.find(needle, i + 1)
    return hits


def sanitized(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


# --------------------------------------------------------------------------------------------


@case("off by default: no wsd-metrics process and no metrics line; with WSD_METRICS_LISTEN the "
      "exposition parses, every family has HELP and TYPE, counters end in _total")
def exposition():
    with Wsd(env={"WSD_POOL_MIN": "2"}) as w:
        check("wsd-metrics" not in children_by_name(w).values(), w.children())
        check("metrics on http" not in w.log(), w.log_tail())
    with Wsd(env=BASE) as w:
        wait_until(lambda: "wsd-metrics" in children_by_name(w).values(), 3, "a wsd-metrics child")
        m = scrape(w)
        _, _, body = http_req(w, "GET", "/metrics")
        text = body.decode()
        types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
        helps = set(re.findall(r"^# HELP (\S+) ", text, re.M))
        check(set(types) == helps, f"TYPE without HELP or back: {set(types) ^ helps}")
        for name, t in types.items():
            check(name.startswith("wsd_"), name)
            check((t == "counter") == name.endswith("_total"), f"{name} is a {t}")
        for want in ["wsd_connections_open", "wsd_connections_accepted_total",
                     "wsd_handshake_failures_total", "wsd_connections_closed_total", "wsd_workers",
                     "wsd_workers_spawned_total", "wsd_terminations_total",
                     "wsd_kill_escalations_total", "wsd_heartbeat_terminations_total",
                     "wsd_abuse_bans_total", "wsd_strays_reaped_total",
                     "wsd_received_bytes_total", "wsd_sent_bytes_total",
                     "wsd_received_messages_total", "wsd_sent_messages_total",
                     "wsd_kill_to_exit_seconds", "wsd_worker_spawn_seconds"]:
            check(want in types, f"{want} missing from /metrics")
        check(types["wsd_kill_to_exit_seconds"] == "histogram", types)
        check(val(m, "wsd_workers", state="idle") == 2, m)
        check(val(m, "wsd_workers_spawned_total") >= 2, m)
        check(val(m, "wsd_worker_spawn_seconds_count") == val(m, "wsd_workers_spawned_total"), m)
        check(val(m, "wsd_worker_spawn_seconds_bucket", le="+Inf") ==
              val(m, "wsd_worker_spawn_seconds_count"), m)
        w.check_clean()


@case("traffic from real clients moves the counters exactly, open connections' included")
async def traffic():
    with Wsd(env=BASE) as w:
        before = scrape(w)
        sizes = [1, 125, 126, 70000]
        async with ws_connect(w, "/a") as a, ws_connect(w, "/b") as b:
            for n in sizes:
                await a.send("x" * n)
                check(await recv_within(a) == "x" * n, "echo")
            await b.send(b"\0" * 10)
            await recv_within(b)
            mid = scrape(w)  # both still open: their traffic is read from the workers
            check(val(mid, "wsd_connections_open") == 2, mid)
            check(val(mid, "wsd_workers", state="busy") == 2, mid)
            total = sum(sizes) + 10
            for name, want in [("wsd_received_bytes_total", total), ("wsd_sent_bytes_total", total),
                               ("wsd_received_messages_total", 5), ("wsd_sent_messages_total", 5)]:
                got = val(mid, name) - val(before, name)
                check(got == want, f"{name} moved by {got}, want {want}")
            await a.close()
            await b.close()
        after = await asyncio.to_thread(wait_until, lambda: (lambda m: m if val(
            m, "wsd_connections_open") == 0 else None)(scrape(w)), 5, "no open connection")
        check(val(after, "wsd_received_bytes_total") == val(mid, "wsd_received_bytes_total"),
              "the bytes were not counted twice when the connections closed")
        check(val(after, "wsd_connections_closed_total", cause="normal", code="1000") -
              val(before, "wsd_connections_closed_total", cause="normal", code="1000") == 2, after)
        check(val(after, "wsd_connections_accepted_total") -
              val(before, "wsd_connections_accepted_total") == 2, after)
        check(val(after, "wsd_handshakes_total") - val(before, "wsd_handshakes_total") == 2, after)
        w.check_clean()


@case("refused handshakes are counted by status (400 405 426 431)")
def handshake_failures():
    with Wsd(env=dict(BASE, WSD_MAX_HEADER_BYTES="1024")) as w:
        before = scrape(w)
        expect_status(w, upgrade_request(key="short"), 400)
        expect_status(w, upgrade_request(method="POST"), 405)
        expect_status(w, upgrade_request(version="12"), 426)
        expect_status(w, upgrade_request(extra=[("X-Big", "y" * 2000)]), 431)
        expect_status(w, upgrade_request(version="8"), 426)
        want = {"400": 1, "405": 1, "426": 2, "431": 1, "503": 0}

        def counted(m):
            return {st: val(m, "wsd_handshake_failures_total", status=st) -
                    val(before, "wsd_handshake_failures_total", status=st) for st in want}
        # the acceptor counts a refusal as it answers it: the last may still be on its way
        m = wait_until(lambda: (lambda m: m if counted(m) == want else None)(scrape(w)), 3,
                       f"the refusals to be counted {want}")
        check(val(m, "wsd_handshakes_total") == val(before, "wsd_handshakes_total"), m)
        w.check_clean()


@case("a wsctl kill is counted: termination, close by cause and code, kill-to-exit histogram")
async def kill_counted():
    with Wsd(env=BASE) as w:
        async with ws_connect(w, "/k") as c:
            cid = int(w.open_line(local_port(c))["conn"])
            p = subprocess.run([WSCTL, "-s", os.path.join(w.tmp, "ctl.sock"), "kill", str(cid),
                                "--code", "4001"], capture_output=True, timeout=10 * SLOW)
            check(p.returncode == 0, p.stderr)
            e = await expect_server_close(c)
            check(e.rcvd and e.rcvd.code == 4001, f"close {e.rcvd}")
        m = await asyncio.to_thread(wait_until, lambda: (lambda m: m if val(
            m, "wsd_kill_to_exit_seconds_count") else None)(scrape(w)), 5, "the kill to be counted")
        check(val(m, "wsd_terminations_total", cause="operator") == 1, m)
        check(val(m, "wsd_connections_closed_total", cause="operator", code="4001") == 1, m)
        check(val(m, "wsd_kill_to_exit_seconds_count") == 1, m)
        check(0 < val(m, "wsd_kill_to_exit_seconds_sum") < 5, m)
        check(val(m, "wsd_kill_to_exit_seconds_bucket", le="+Inf") == 1, m)
        check(val(m, "wsd_kill_escalations_total") == 0, m)
        w.check_clean()


@case("detectors are counted: a silent client's heartbeat termination, an abuser's ban")
def detectors_counted():
    env = dict(BASE, WSD_PING_INTERVAL_MS="200", WSD_PING_TIMEOUT_MS="200", WSD_ABUSE_LIMIT="2")
    with Wsd(env=env) as w:
        with w.raw() as c:  # never answers a ping
            c.handshake("/silent")
            c.expect_close(1001, timeout=5)
        for _ in range(2):  # unmasked frames: 1002 each, a ban at the second
            with w.raw() as c:
                c.handshake()
                c.send_frame(OP_TEXT, "x", mask=False)
                try:
                    c.expect_close(1002, reply=False)
                except Exception:  # noqa: BLE001 -- the ban may end it with 1008 first
                    pass
        # a connection's end is counted when its worker's report arrives, after the client saw it
        m = wait_until(lambda: (lambda m: m if val(m, "wsd_abuse_bans_total") and val(
            m, "wsd_connections_closed_total", cause="heartbeat", code="1001") else None)(
            scrape(w)), 5, "the ban and the heartbeat's close to be counted")
        check(val(m, "wsd_heartbeat_terminations_total") == 1, m)
        check(val(m, "wsd_terminations_total", cause="heartbeat") == 1, m)
        check(val(m, "wsd_connections_closed_total", cause="heartbeat", code="1001") == 1, m)
        check(val(m, "wsd_protocol_violations_total") == 2, m)
        check(val(m, "wsd_abuse_bans_total") == 1, m)
        expect_status(w, upgrade_request(), 429)  # banned now
        m = wait_until(lambda: (lambda m: m if val(m, "wsd_handshake_failures_total", status="429")
                                else None)(scrape(w)), 3, "the 429 to be counted")
        w.check_clean()


@case("POST /api/kill: 401 without or with a wrong token, 403 cross-site (Origin, "
      "Sec-Fetch-Site), 405 for GET; the right token closes the connection with its code")
async def kill_auth():
    with Wsd(env=dict(BASE, WSD_ADMIN_TOKEN=TOKEN)) as w:
        async with ws_connect(w, "/victim") as c:
            cid = int(w.open_line(local_port(c))["conn"])
            host = f"127.0.0.1:{metrics_port(w)}"
            st, h, body = await asyncio.to_thread(kill_form, w, cid)
            check(st == 401 and h.get("www-authenticate", "").startswith("Bearer"), (st, h, body))
            st, _, _ = await asyncio.to_thread(kill_form, w, cid, headers=bearer("wrong" * 4))
            check(st == 401, st)
            st, _, _ = await asyncio.to_thread(kill_form, w, cid, headers={
                "Authorization": f"Basic {TOKEN}"})
            check(st == 401, st)
            st, _, body = await asyncio.to_thread(kill_form, w, cid, headers=dict(
                bearer(), Origin="http://evil.example"))
            check(st == 403 and b"Origin" in body, (st, body))
            st, _, body = await asyncio.to_thread(kill_form, w, cid, headers=dict(
                bearer(), **{"Sec-Fetch-Site": "cross-site"}))
            check(st == 403, (st, body))
            st, h, _ = await asyncio.to_thread(http_req, w, "GET", f"/api/kill?id={cid}")
            check(st == 405 and h.get("allow") == "POST", (st, h))
            st, _, body = await asyncio.to_thread(kill_form, w, 999999, headers=bearer())
            check(st == 404, (st, body))
            st, _, body = await asyncio.to_thread(kill_form, w, cid, code=1005, headers=bearer())
            check(st == 400, (st, body))
            check(c.close_code is None, "a refused kill closed the connection")
            await c.send("still")
            check(await recv_within(c) == "still", "echo after refusals")
            st, _, body = await asyncio.to_thread(kill_form, w, cid, code=4002, reason="bye%21",
                                                  headers=dict(bearer(), Origin=f"http://{host}",
                                                               **{"Sec-Fetch-Site": "same-origin"}))
            check(st == 200 and json.loads(body)["ok"] is True, (st, body))
            e = await expect_server_close(c)
            check(e.rcvd and (e.rcvd.code, e.rcvd.reason) == (4002, "bye!"), f"close {e.rcvd}")
        w.check_clean()


@case("without WSD_ADMIN_TOKEN every kill is refused with 403, token or not; the page and "
      "/api/state are served read-only")
async def read_only():
    with Wsd(env=BASE) as w:
        async with ws_connect(w, "/ro") as c:
            cid = int(w.open_line(local_port(c))["conn"])
            st, _, body = await asyncio.to_thread(kill_form, w, cid, headers=bearer())
            check(st == 403 and b"read-only" in body, (st, body))
            st, h, page = await asyncio.to_thread(http_req, w, "GET", "/")
            check(st == 200 and h["content-type"].startswith("text/html"), (st, h))
            check("default-src 'none'" in h.get("content-security-policy", ""), h)
            check(b"<script" in page and b"src=" not in page.split(b"<script")[1][:20], "inline")
            st, _, body = await asyncio.to_thread(http_req, w, "GET", "/api/state")
            s = json.loads(body)
            check(s["admin"] is False and s["stats"]["open"] == 1, s)
            check([(x["id"], x["path"]) for x in s["connections"]] == [(cid, "/ro")], s)
            await c.send("still")
            check(await recv_within(c) == "still", "echo")
        w.check_clean()


@case("the metrics listener answers bad requests (400, 404, 405, 413, 431) and keeps serving")
def bad_http():
    with Wsd(env=BASE) as w:
        port = metrics_port(w)
        import socket
        for raw, status in [(b"GARBAGE\r\n\r\n", 400), (b"GET / HTTP/1.1\r\n\r\n", 400),
                            (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                            (b"DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 405),
                            (b"POST /api/kill HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413),
                            (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431)]:
            with socket.create_connection(("127.0.0.1", port), 5 * SLOW) as s:
                s.sendall(raw)
                data = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            check(data.startswith(b"HTTP/1.1 %d " % status), f"{raw[:40]!r}: {data[:80]!r}")
        check(val(scrape(w), "wsd_workers", state="idle") == 2, "still serving")
        w.check_clean()


def conn_of(w, port):
    """The connection id of the client on port, from its open event in text or JSON."""
    def find():
        for line in w.log_lines():
            if line.startswith("{"):
                o = json.loads(line)
                if o.get("event") == "open" and o["peer"].endswith(f":{port}"):
                    return o["conn"]
            elif re.search(r": open conn=", line) and kv(line)["peer"].endswith(f":{port}"):
                return int(kv(line)["conn"])
        return None
    return wait_until(find, 5, f"the open event of the client on port {port}")


def same_traffic(w):
    """A client that echoes one message and closes 1000, and one ended by wsctl kill."""
    async def go():
        async with ws_connect(w, "/j") as c:
            await c.send("hello")
            await recv_within(c)
        async with ws_connect(w, "/k") as c:
            cid = conn_of(w, local_port(c))
            subprocess.run([WSCTL, "-s", os.path.join(w.tmp, "ctl.sock"), "kill", str(cid),
                            "--code", "4003"], capture_output=True, timeout=10 * SLOW)
            await expect_server_close(c)
    asyncio.run(go())


@case("WSD_LOG_FORMAT=json: every line is a JSON object; close and terminated events carry the "
      "same fields and values as the text lines")
def json_logs():
    events = {}
    for fmt in ("text", "json"):
        with Wsd(env=dict(BASE, WSD_LOG_FORMAT=fmt)) as w:
            same_traffic(w)
            wait_until(lambda: "terminated" in w.log(), 5, "the termination line")
            w.check_clean()
            lines = w.log_lines()
        if fmt == "text":
            events[fmt] = {e: [kv(l) for l in lines if re.search(r": %s conn=" % e, l)]
                           for e in ("close", "terminated")}
        else:
            objs = [json.loads(l) for l in lines]  # each line parses
            for o in objs:
                check({"ts", "level", "proc", "proc_pid"} <= set(o) and ("msg" in o) != ("event" in o), o)
            events[fmt] = {e: [{k: str(v) for k, v in o.items()
                                if k not in ("ts", "level", "proc", "proc_pid", "event")}
                               for o in objs if o.get("event") == e] for e in ("close", "terminated")}
            check(all(isinstance(o["conn"], int) for o in objs if o.get("event") == "close"), objs)
    for e in ("close", "terminated"):
        t, j = events["text"][e], events["json"][e]
        check(len(t) == len(j) >= 1, f"{e}: {len(t)} text lines, {len(j)} json lines")
        for a, b in zip(t, j):
            check(list(a) == list(b), f"{e} fields differ: text {list(a)}, json {list(b)}")
            for k in a:
                if k not in ("pid", "peer", "duration_ms"):
                    check(a[k].strip('"') == b[k], f"{e} {k}: text {a[k]!r}, json {b[k]!r}")


@case("WSD_ADMIN_TOKEN is in no child's memory or environment, even after an authenticated "
      "kill; a bad token stops startup without being echoed")
async def token_wiped():
    with Wsd(env=dict(BASE, WSD_ADMIN_TOKEN=TOKEN)) as w:
        async with ws_connect(w, "/t") as c:
            cid = int(w.open_line(local_port(c))["conn"])
            killed = w.worker_of(local_port(c))
            st, _, _ = await asyncio.to_thread(kill_form, w, cid, headers=bearer())
            check(st == 200, st)
            await expect_server_close(c)
        # the killed worker's teardown runs at SCHED_IDLE: it may outlive the connection a bit
        await asyncio.to_thread(wait_until, lambda: pid_gone(killed), 10, "the killed worker's exit")
        async with ws_connect(w, "/t2"):
            # a worker just cloned is still called "wsd" until it names itself
            kids = await asyncio.to_thread(wait_until, lambda: (lambda k: k if "wsd" not in
                                           k.values() else None)(children_by_name(w)), 3,
                                           "every child to have its name")
            check(sorted(set(kids.values())) == ["wsd-acceptor", "wsd-metrics", "wsd-template",
                                                 "wsd-worker"], kids)
            for pid, name in kids.items():
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read()
                check(TOKEN.encode() not in env, f"{name} {pid} has the token in its environment")
                hits = memory_hits(pid, TOKEN.encode())
                if sanitized(pid):
                    # AddressSanitizer's runtime reads /proc/self/environ into a buffer of its
                    # own before main(): that copy of the whole startup environment (it holds
                    # this instance's marker too) is not wsd's to wipe. Any other copy fails.
                    hits = [h for h in hits if f"WSD_TEST_INSTANCE={w.marker}".encode() not in h]
                check(not hits, f"{name} {pid} has the token in memory: {hits[:2]!r}")
        w.check_clean()
    p = subprocess.run([WSD_BIN], env={"WSD_ADMIN_TOKEN": "short secret!", "PATH": "/usr/bin"},
                       capture_output=True, timeout=5 * SLOW)
    err = p.stderr.decode()
    check(p.returncode == 2 and err.count("\n") == 1 and "WSD_ADMIN_TOKEN" in err, (p.returncode, err))
    check("short secret" not in err, f"the bad token was echoed: {err!r}")


@case("bad WSD_METRICS_LISTEN or WSD_LOG_FORMAT values, or a metrics port in use, stop startup "
      "with one line and exit 2")
def bad_config():
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        for var, value, want in [("WSD_METRICS_LISTEN", "localhost:9100", "WSD_METRICS_LISTEN"),
                                 ("WSD_METRICS_LISTEN", "127.0.0.1:70000", "WSD_METRICS_LISTEN"),
                                 ("WSD_LOG_FORMAT", "xml", "WSD_LOG_FORMAT"),
                                 ("WSD_METRICS_LISTEN", taken, "WSD_METRICS_LISTEN")]:
            p = subprocess.run([WSD_BIN], env={"PATH": "/usr/bin", "WSD_LISTEN": "127.0.0.1:0",
                                               var: value}, capture_output=True, timeout=5 * SLOW)
            err = p.stderr.decode()
            lines = [l for l in err.splitlines() if "error" in l or "invalid" in l]
            check(p.returncode == 2 and len(lines) == 1 and want in lines[0] and value in lines[0],
                  f"{var}={value}: exit {p.returncode}, {err!r}")


@case("a killed wsd-metrics process is restarted and the counters survive (they live in the "
      "supervisor); SIGTERM stops it with wsd")
async def metrics_restart():
    with Wsd(env=BASE) as w:
        async with ws_connect(w, "/r") as c:
            await c.send("x" * 100)
            await recv_within(c)
        # the close reaches the supervisor a moment after the client sees it
        before = await asyncio.to_thread(wait_until, lambda: (lambda m: m if val(
            m, "wsd_connections_open") == 0 else None)(scrape(w)), 5, "no open connection")
        check(val(before, "wsd_received_bytes_total") == 100, before)
        old = next(p for p, n in children_by_name(w).items() if n == "wsd-metrics")
        os.kill(old, signal.SIGKILL)
        await asyncio.to_thread(wait_until, lambda: any(
            n == "wsd-metrics" and p != old for p, n in children_by_name(w).items()), 5,
            "a new wsd-metrics process")
        check(proc_status(old) is None, "the old one was reaped")
        after = await asyncio.to_thread(scrape, w)
        check(val(after, "wsd_received_bytes_total") == 100, after)
        check("wsd-metrics pid=" in w.log(), "its death was logged")
        w.check_clean()


run()
