#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Worker spawn rate alone: how long wsd takes from start to WSD_POOL_MIN=N idle workers, for
# this build and (BASELINE_WSD) another, alternated RUNS times; medians. Compares the worker
# template (clone from a small sandboxed process, pidfd back over SCM_RIGHTS) with whatever the
# baseline does. Workers inherit the template's one seccomp filter: none loads its own.
#
# Environment: N (300), RUNS (5), BUILD (build), WSD, BASELINE_WSD (optional).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
WSD=${WSD:-$BUILD/wsd}
N=${N:-300}
RUNS=${RUNS:-5}

# seconds from start to N live wsd-worker children of the started wsd
spawn_time() {
    local bin=$1 t0 pid n
    t0=$(date +%s.%N)
    WSD_LISTEN=127.0.0.1:0 WSD_POOL_MIN=$N WSD_LOG_LEVEL=error \
        WSD_CONTROL_SOCKET=/tmp/wsd-spawn-rate.sock taskset -c 0 "$bin" 2>/dev/null &
    pid=$!
    for _ in $(seq 3000); do
        n=$(grep -l "^PPid:[[:space:]]*$pid\$" /proc/[0-9]*/status 2>/dev/null |
            xargs -r grep -l '^Name:[[:space:]]*wsd-worker' 2>/dev/null | wc -l)
        [ "$n" -ge "$N" ] && break
        sleep 0.01
    done
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}'
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
}

. bench/stats.sh
declare -A T
bins=(this)
[ -n "${BASELINE_WSD:-}" ] && bins+=(baseline)
for run in $(seq "$RUNS"); do
    for b in "${bins[@]}"; do
        bin=$WSD
        [ "$b" = baseline ] && bin=$BASELINE_WSD
        t=$(spawn_time "$bin")
        T[$b]+="$t "
        printf 'spawn-rate: run %d %s: %d workers in %s s\n' "$run" "$b" "$N" "$t" >&2
    done
done
echo "| build | median time to $N idle workers | workers/s | runs (s) |"
echo "|---|---|---|---|"
for b in "${bins[@]}"; do
    m=$(echo "${T[$b]}" | median)
    echo "| $b | $m s | $(awk -v n="$N" -v m="$m" 'BEGIN {printf "%.0f", n / m}') | ${T[$b]% } |"
done
