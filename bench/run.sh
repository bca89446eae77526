#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The comparison suite behind `make bench`: wsd against the servers a user would pick instead
# (websocketd, npm ws, libwebsockets, python3-websockets), all on 127.0.0.1, in one invocation so
# that the ratios are meaningful on a noisy machine. Servers on CPU 0, wsbench on CPU 1.
#
# Besides the servers: `wsbench kill` (wsd only: N connections open, closed one at a time through
# the control socket, starting 3 s after the last one opened, once wsd's pool has refilled),
# two probes on the servers' CPU without a server: `wsbench spawn` (the empty clone3 + exit +
# reap rate, what process creation alone allows) and `wsbench switch` (a wakeup and switch
# among 1,000 processes, and among 1,000 threads), and after each conn run the two reference
# servers of bench/peers/ref_fork.c (forked, exec'd: what a process per connection costs with
# nothing else).
#
# Environment: QUICK=1 (about a minute: short runs, one run per cell, hold of 1000),
# DURATION=seconds per run (10), RUNS=runs per cell (3), WARMUP=seconds (2), HOLD_N (10000),
# KILL_N (connections open in the kill scenario, 1000),
# SERVERS="wsd wsd-reuse lws ws websocketd python" (a subset runs only those), BASE_PORT (19200),
# NO_INSTALL=1 (skip apt/npm), BUILD (build). Writes bench/results/<timestamp>.{json,md,*.png};
# a full run (not QUICK) also rewrites the generated block of BENCH.md. Exit status 0 when every cell ran, 1 when some failed (see the table).
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
WSBENCH=${WSBENCH:-$BUILD/bench/wsbench}
WSD=${WSD:-$BUILD/wsd}
LWS_ECHO=$BUILD/bench/lws_echo
PY=/usr/bin/python3 # Debian's, which has python3-websockets (a pyenv python may not)
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-1.5}; RUNS=${RUNS:-1}; WARMUP=${WARMUP:-0.3}; HOLD_N=${HOLD_N:-1000}
    KILL_N=${KILL_N:-300}; HOLD_S=1
else
    DURATION=${DURATION:-10}; RUNS=${RUNS:-3}; WARMUP=${WARMUP:-2}; HOLD_N=${HOLD_N:-10000}
    KILL_N=${KILL_N:-1000}; HOLD_S=3
fi
SERVERS=${SERVERS:-"wsd wsd-reuse lws ws websocketd python"}
BASE_PORT=${BASE_PORT:-19200}
SERVER_CPU=0
CLIENT_CPU=1
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# the code measured: taken now, since BENCH.md may be edited while the suite runs
WSD_COMMIT=$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- . ':!BENCH.md' 2>/dev/null || echo -dirty)
OUT=bench/results
[ "$QUICK" = 1 ] && OUT=bench/results/quick # a developer's check: not kept in git
RAW=$OUT/$STAMP.raw.jsonl
mkdir -p "$OUT" "$BUILD/bench"
: >"$RAW"

log() { printf 'bench: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- dependencies
install_deps() {
    local missing=()
    command -v websocketd >/dev/null || missing+=(websocketd)
    dpkg -s libwebsockets-dev >/dev/null 2>&1 || missing+=(libwebsockets-dev)
    $PY -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
    command -v node >/dev/null || missing+=(nodejs npm)
    command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]} (apt)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
            >/dev/null || log "apt-get install failed; the missing peers are skipped"
    fi
    if [ ! -d bench/node_modules/ws ] && command -v npm >/dev/null; then
        log "installing npm ws into bench/node_modules"
        (cd bench && npm install --no-audit --no-fund --silent) || log "npm install failed"
    fi
}
[ "${NO_INSTALL:-0}" = 1 ] || install_deps

if [ ! -x "$WSBENCH" ] || [ ! -x "$WSD" ]; then
    log "$WSBENCH or $WSD is missing: run 'make $WSBENCH $WSD' first"
    exit 1
fi
if [ ! -x "$LWS_ECHO" ] || [ bench/peers/lws_echo.c -nt "$LWS_ECHO" ]; then
    gcc -std=gnu11 -O2 -o "$LWS_ECHO" bench/peers/lws_echo.c \
        $(pkg-config --cflags --libs libwebsockets 2>/dev/null) || log "cannot build lws_echo"
fi
REF_FORK=$BUILD/bench/ref_fork
REF_CLOSER=$BUILD/bench/ref_closer
if [ ! -x "$REF_FORK" ] || [ ! -x "$REF_CLOSER" ] || [ bench/peers/ref_fork.c -nt "$REF_FORK" ] ||
    [ bench/peers/ref_closer.c -nt "$REF_CLOSER" ] || [ bench/peers/ref_close.h -nt "$REF_FORK" ]; then
    { gcc -std=gnu11 -O2 -I. -o "$REF_FORK" bench/peers/ref_fork.c "$BUILD/libwsd.a" -lwolfssl &&
        gcc -std=gnu11 -O2 -nostdlib -static -fno-stack-protector -o "$REF_CLOSER" \
            bench/peers/ref_closer.c; } || log "cannot build the reference servers"
fi

# One fd per connection, on both sides: raise the soft limit to the hard one (20000 here).
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- servers
declare -A PORT PID
i=0
for s in $SERVERS; do PORT[$s]=$((BASE_PORT + i)); i=$((i + 1)); done

port_busy() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

start_server() { # name
    local s=$1 p=${PORT[$1]} logf=$OUT/$STAMP.$1.log
    local wsd_env=(WSD_LISTEN=127.0.0.1:$p WSD_POOL_MIN=32 WSD_MAX_CONNS=$((HOLD_N + 1000))
        WSD_MAX_CONNS_PER_IP=0 WSD_ABUSE_LIMIT=0 WSD_LOG_LEVEL=notice
        WSD_CONTROL_SOCKET=/tmp/wsd-bench-$p.sock)
    if port_busy "$p"; then
        log "port $p is in use: skipping $s (set BASE_PORT)"
        return 1
    fi
    case $s in
    lws) [ -x "$LWS_ECHO" ] || return 1 ;;
    ws) [ -d bench/node_modules/ws ] || return 1 ;;
    websocketd) command -v websocketd >/dev/null || return 1 ;;
    esac
    # exec: the background subshell becomes the server, so $! is the server's own pid (what
    # stop_servers signals and what hold measures from).
    case $s in
    wsd) exec env "${wsd_env[@]}" taskset -c $SERVER_CPU "$WSD" ;;
    wsd-reuse) exec env "${wsd_env[@]}" WSD_WORKER_REUSE=1000000 taskset -c $SERVER_CPU "$WSD" ;;
    lws) exec taskset -c $SERVER_CPU "$LWS_ECHO" "$p" ;;
    ws) exec taskset -c $SERVER_CPU node bench/peers/ws_echo.js "$p" ;;
    websocketd) exec taskset -c $SERVER_CPU websocketd --address 127.0.0.1 --port "$p" \
        --loglevel fatal cat ;;
    python) exec taskset -c $SERVER_CPU $PY bench/peers/py_echo.py "$p" ;;
    esac >"$logf" 2>&1 &
    PID[$s]=$!
    for _ in $(seq 50); do
        port_busy "$p" && return 0
        kill -0 "${PID[$s]}" 2>/dev/null || break
        sleep 0.1
    done
    log "$s did not start (see $logf)"
    unset "PID[$s]"
    return 1
}

stop_servers() {
    local s
    for s in "${!PID[@]}"; do kill -TERM "${PID[$s]}" 2>/dev/null; done
    for _ in $(seq 50); do
        local alive=0
        for s in "${!PID[@]}"; do kill -0 "${PID[$s]}" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for s in "${!PID[@]}"; do kill -KILL "${PID[$s]}" 2>/dev/null; done
    wait 2>/dev/null
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

UP=()
for s in $SERVERS; do start_server "$s" && UP+=("$s"); done
log "servers up: ${UP[*]} (ports ${PORT[*]})"

# ---------------------------------------------------------------- scenarios
# name | wsbench arguments | servers (all = every one up). websocketd is a line echo: text only,
# and its line reader refuses lines over 64 KiB, so it sits out the 64 KiB scenario.
SCEN=(
    "conn-c64|conn -c 64|all"
    "echo-c1-p1-s32|echo -c 1 -p 1 -s 32|all"
    "echo-c100-p16-s32|echo -c 100 -p 16 -s 32|all"
    "echo-c1000-p4-s512|echo -c 1000 -p 4 -s 512|all"
    "echo-c100-p4-s64k|echo -c 100 -p 4 -s 65536|wsd wsd-reuse lws ws python"
    "churn-c32|churn -c 32 -s 32|all"
    "kill-n$KILL_N|kill -n $KILL_N|wsd wsd-reuse"
    "killwarm-n$KILL_N|kill -n $KILL_N --warm|wsd wsd-reuse"
)
[ "$QUICK" = 1 ] && SCEN=("${SCEN[0]}" "${SCEN[1]}" "${SCEN[2]}" "${SCEN[5]}" "${SCEN[6]}")

FAILED=0
run_one() { # server scenario run args...
    local s=$1 sc=$2 run=$3 rc out
    shift 3
    # kill talks to wsd's control socket (start_server names it after the port)
    [ "$1" = kill ] && set -- "$@" --control "/tmp/wsd-bench-${PORT[$s]}.sock"
    out=$(timeout --kill-after=5 $((${DURATION%.*} + 150)) taskset -c $CLIENT_CPU "$WSBENCH" "$@" \
        --url "ws://127.0.0.1:${PORT[$s]}/" --label "$s|$sc|$run" 2>"$OUT/.stderr")
    rc=$?
    if [ "$run" != warmup ]; then
        printf '%s\n' "$out" | grep '^wsbench' | sed "s/^/  [$s run $run] /" >&2
        if [ $rc -ne 0 ]; then
            FAILED=1
            log "$s $sc run $run: exit $rc: $(head -c 300 "$OUT/.stderr" | tr '\n' ' ')"
            { echo "== $s $sc run $run: exit $rc"; head -n 40 "$OUT/.stderr"; } >>"$OUT/$STAMP.errors.log"
        fi
        printf '%s\n' "$out" | grep '^{' | sed "s/}\$/,\"exit\":$rc}/" >>"$RAW"
        [ -n "$(printf '%s' "$out" | grep '^{')" ] ||
            printf '{"tool":"wsbench","label":"%s|%s|%s","exit":%d,"rate":0}\n' "$s" "$sc" "$run" \
                $rc >>"$RAW"
    fi
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then
        log "$s died during $sc (see $OUT/$STAMP.$s.log): restarting it"
        FAILED=1
        start_server "$s" || true
    fi
}

# The probes, on the servers' CPU between the scenarios' runs, so that they see the same
# machine as wsd's runs: process creation (after conn: the floor under a fresh process per
# connection), and a switch among 1,000 processes against 1,000 threads (after echo C=1000:
# what each wakeup of a worker costs there, and what of it the address space's switch is).
run_probe() { # run scenario-label wsbench-args...
    local out rc run=$1 label=$2
    shift 2
    out=$(timeout --kill-after=5 60 taskset -c $SERVER_CPU "$WSBENCH" "$@" -d "$DURATION" \
        --label "probe|$label|$run" 2>"$OUT/.stderr")
    record_probe $? "$run" "$label" "$out"
}

record_probe() { # exit-status run label output
    local rc=$1 run=$2 label=$3 out=$4
    printf '%s\n' "$out" | grep '^wsbench' | sed "s/^/  [probe run $run] /" >&2
    [ $rc -eq 0 ] || { FAILED=1; log "$label probe run $run: exit $rc: $(head -c 300 "$OUT/.stderr")"; }
    printf '%s\n' "$out" | grep '^{' | sed "s/}\$/,\"exit\":$rc}/" >>"$RAW"
}

# The references for conn (bench/peers/ref_fork.c): the least a process-per-connection server
# does, each connection's close in a forked process, or in an exec'd static binary without libc.
# Run as a server is (on its CPU, wsbench on the other), started for each run.
REF_PORT=$((BASE_PORT + 50))
run_reference() { # run fork|exec wsbench-args...
    local run=$1 mode=$2 pid out rc
    shift 2
    [ -x "$REF_FORK" ] && [ -x "$REF_CLOSER" ] || return 0
    if port_busy $REF_PORT; then
        log "port $REF_PORT is in use: no ref-$mode run (set BASE_PORT)"
        return 0
    fi
    taskset -c $SERVER_CPU "$REF_FORK" $REF_PORT "$mode" "$REF_CLOSER" >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 50); do port_busy $REF_PORT && break; sleep 0.1; done
    out=$(timeout --kill-after=5 60 taskset -c $CLIENT_CPU "$WSBENCH" "$@" \
        --url "ws://127.0.0.1:$REF_PORT/" --label "probe|ref-$mode|$run" 2>"$OUT/.stderr")
    rc=$?
    kill -TERM $pid 2>/dev/null
    wait $pid 2>/dev/null
    record_probe $rc "$run" "ref-$mode" "$out"
}

for entry in "${SCEN[@]}"; do
    IFS='|' read -r sc args only <<<"$entry"
    targets=()
    for s in "${UP[@]}"; do
        [ "$only" = all ] || [[ " $only " == *" $s "* ]] && targets+=("$s")
    done
    log "$sc: warm-up"
    for s in "${targets[@]}"; do run_one "$s" "$sc" warmup $args -d "$WARMUP"; done
    # Runs interleave the servers, so a burst of noise from the shared machine hits them all.
    for run in $(seq "$RUNS"); do
        for s in "${targets[@]}"; do run_one "$s" "$sc" "$run" $args -d "$DURATION"; done
        if [[ $sc == conn-* ]]; then
            run_probe "$run" spawn-c1 spawn -c 1
            run_reference "$run" fork $args -d "$DURATION"
            run_reference "$run" exec $args -d "$DURATION"
        fi
        if [[ $sc == echo-c1000-* ]]; then
            run_probe "$run" switch-c1000 switch -c 1000
            run_probe "$run" switch-threads-c1000 switch -c 1000 --threads
        fi
    done
done

# hold: one run per server (opening 10,000 connections is the slow part), memory measured over
# the server's process tree. Each server is restarted first so that earlier runs' memory (and
# wsd's idle pool) is in the "before" figure only.
log "hold-n$HOLD_N"
for s in "${UP[@]}"; do
    [ "$s" = wsd-reuse ] && continue
    kill -TERM "${PID[$s]}" 2>/dev/null
    wait "${PID[$s]}" 2>/dev/null
    for _ in $(seq 100); do port_busy "${PORT[$s]}" || break; sleep 0.1; done # wsd's acceptor
    start_server "$s" || continue
    sleep 1
    run_one "$s" "hold-n$HOLD_N" 1 hold -n "$HOLD_N" -d "$HOLD_S" --settle "$HOLD_S" --pids "${PID[$s]}" \
        --timeout 30
done

# ---------------------------------------------------------------- report
{
    echo "{\"stamp\":\"$STAMP\",\"kernel\":\"$(uname -r)\",\"cpu\":\"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\",\"nproc\":$(nproc),\"quick\":$QUICK,\"duration_s\":$DURATION,\"runs\":$RUNS,\"hold_n\":$HOLD_N,\"loadavg_start\":\"$LOAD_START\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"wsd_commit\":\"$WSD_COMMIT\"}"
} >"$OUT/$STAMP.meta.json"
$PY bench/report.py "$OUT" "$STAMP" || FAILED=1
rm -f "$OUT/.stderr"
log "results: $OUT/$STAMP.json, $OUT/$STAMP.md$([ "$QUICK" = 1 ] || echo "; BENCH.md updated")"
exit $FAILED
