#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A/B of two wsd binaries in one invocation, for judging a change to the hot path: both run as
# bench/run.sh runs wsd (CPU 0, WSD_POOL_MIN=32, no per-IP caps), wsbench on CPU 1, runs
# alternate A, B, A, B... so that the shared machine's noise hits both; prints every run and
# the medians. Besides the rate, the CPU time wsd spent per completed cycle (all its processes,
# counted by a cpuacct cgroup; see cpu_us): on a machine that others load, the rate moves with
# their load; the CPU per cycle much less. "Cycle" is what wsbench counts: a handshake, a
# message, a kill.
#
#   bench/ab.sh OLD_WSD NEW_WSD [ROUNDS] -- WSBENCH ARGS (default: conn -c 64 -d 3)
#
# Environment: WSBENCH (build/bench/wsbench), PORT (19300: A on it, B on the next), AB_ENV
# (extra VAR=value words for both servers, e.g. "WSD_WORKER_REUSE=1000000").
set -u
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '3,10p' "$0" >&2; exit 64; }
A=$1 B=$2 ROUNDS=5
shift 2
if [ $# -gt 0 ] && [ "$1" != -- ]; then ROUNDS=$1; shift; fi
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || set -- conn -c 64 -d 3
WSBENCH=${WSBENCH:-build/bench/wsbench}
PORT=${PORT:-19300}
ulimit -n "$(ulimit -Hn)"

# Each server runs in its own cpuacct cgroup where the host has one (cgroup v1), so that every
# worker's CPU counts, the live ones' too; elsewhere from /proc (reaped workers and the live
# direct children only).
CG=/sys/fs/cgroup/cpuacct
[ -w "$CG" ] || CG=

start() { # binary port -> pid on stdout
    local cg=
    if [ -n "$CG" ] && mkdir -p "$CG/wsd-ab-$2" 2>/dev/null; then cg="$CG/wsd-ab-$2/cgroup.procs"; fi
    sh -c '[ -z "$1" ] || echo $$ >"$1"; shift; exec "$@"' sh "$cg" \
        env WSD_LISTEN="127.0.0.1:$2" WSD_POOL_MIN=32 WSD_MAX_CONNS=11000 WSD_MAX_CONNS_PER_IP=0 \
        WSD_ABUSE_LIMIT=0 WSD_LOG_LEVEL=warn WSD_CONTROL_SOCKET="/tmp/wsd-ab-$2.sock" \
        ${AB_ENV:-} taskset -c 0 "$1" >"/tmp/wsd-ab-$2.log" 2>&1 &
    echo $!
}
PA=$(start "$A" "$PORT")
PB=$(start "$B" $((PORT + 1)))
trap 'kill -TERM $PA $PB 2>/dev/null; wait; sleep 0.5
      [ -z "$CG" ] || rmdir "$CG/wsd-ab-$PORT" "$CG/wsd-ab-$((PORT + 1))" 2>/dev/null' EXIT
sleep 1.5

# CPU time of the server on PORT (pid): in microseconds
cpu_us() {
    if [ -n "$CG" ] && [ -r "$CG/wsd-ab-$1/cpuacct.usage" ]; then
        echo $(($(cat "$CG/wsd-ab-$1/cpuacct.usage") / 1000))
        return
    fi
    local t c hz
    hz=$(getconf CLK_TCK)
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$2/stat")
    for c in $(cat /proc/"$2"/task/*/children 2>/dev/null); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || echo 0)))
    done
    echo $((t * 1000000 / hz))
}

declare -a RA RB
for r in $(seq "$ROUNDS"); do
    for side in A B; do
        port=$PORT
        [ $side = B ] && port=$((PORT + 1))
        pid=$PA
        [ $side = B ] && pid=$PB
        t0=$(cpu_us "$port" "$pid")
        line=$(taskset -c 1 "$WSBENCH" "$@" --url "ws://127.0.0.1:$port/" \
            --control "/tmp/wsd-ab-$port.sock" 2>/dev/null | grep '^{')
        t1=$(cpu_us "$port" "$pid")
        rate=$(printf '%s' "$line" | sed -n 's/.*"rate":\([0-9.]*\).*/\1/p')
        count=$(printf '%s' "$line" | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
        p99=$(printf '%s' "$line" | sed -n 's/.*"p99":\([0-9.]*\).*/\1/p')
        cpu=$(awk -v t=$((t1 - t0)) -v n="${count:-0}" 'BEGIN { printf "%.1f", n ? t / n : 0 }')
        printf 'round %d %s: rate %s p99 %s us, wsd CPU %s us per cycle\n' "$r" "$side" \
            "${rate:-?}" "${p99:-?}" "$cpu"
        if [ $side = A ]; then RA+=("${rate:-0} ${p99:-0} $cpu"); else RB+=("${rate:-0} ${p99:-0} $cpu"); fi
    done
done
. bench/stats.sh
for side in A B; do
    if [ $side = A ]; then set -- "${RA[@]}"; else set -- "${RB[@]}"; fi
    rate=$(printf '%s\n' "$@" | cut -d' ' -f1 | median)
    p99=$(printf '%s\n' "$@" | cut -d' ' -f2 | median)
    cpu=$(printf '%s\n' "$@" | cut -d' ' -f3 | median)
    printf 'median %s: rate %s p99 %s us, wsd CPU %s us per cycle (%s)\n' "$side" "$rate" "$p99" \
        "$cpu" "$([ $side = A ] && echo "$A" || echo "$B")"
done
