#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The exec handler against websocketd (issue 7): wsd with WSD_HANDLER=exec WSD_EXEC=/bin/cat
# and `websocketd --port P cat`, both running cat per connection, on connection churn and on
# line echo. The servers are measured alternately, RUNS times (3), and the medians compared,
# so a noisy machine hits both alike. Servers on CPU 0, wsbench on CPU 1.
#
# With BASELINE_WSD=path (another wsd build, e.g. one without the worker template), it also
# compares worker spawn rates: churn against the echo handler of both builds.
#
# Environment: DURATION (seconds per run, 5), RUNS (3), BASE_PORT (19400), BUILD (build),
# WSD (the wsd binary), BASELINE_WSD, NO_INSTALL=1 (skip apt). Prints one table; writes
# bench/results/<timestamp>-exec.md. Exit 1 if a run failed.
#
# Kernel hazard (see README): wsd's workers inherit one seccomp filter from the worker
# template; nothing here loads a BPF program per process.
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
WSBENCH=${WSBENCH:-$BUILD/bench/wsbench}
WSD=${WSD:-$BUILD/wsd}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-19400}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench/results
mkdir -p "$OUT"
log() { printf 'bench-exec: %s\n' "$*" >&2; }

[ "${NO_INSTALL:-0}" = 1 ] || ./scripts/install-deps.sh bench >/dev/null || true
command -v websocketd >/dev/null || { log "websocketd is not installed"; exit 1; }
[ -x "$WSBENCH" ] && [ -x "$WSD" ] || { log "build $WSBENCH and $WSD first"; exit 1; }

declare -A PORT PID
PORT[wsd]=$BASE_PORT
PORT[websocketd]=$((BASE_PORT + 1))
PORT[wsd-echo]=$((BASE_PORT + 2))
PORT[baseline-echo]=$((BASE_PORT + 3))
start() {
    case $1 in
    wsd) WSD_LISTEN=127.0.0.1:${PORT[wsd]} WSD_HANDLER=exec WSD_EXEC=/bin/cat \
        WSD_LOG_LEVEL=notice WSD_CONTROL_SOCKET=/tmp/wsd-bench-exec.sock \
        exec taskset -c 0 "$WSD" ;;
    wsd-echo) WSD_LISTEN=127.0.0.1:${PORT[$1]} WSD_LOG_LEVEL=notice \
        WSD_CONTROL_SOCKET=/tmp/wsd-bench-echo.sock exec taskset -c 0 "$WSD" ;;
    baseline-echo) WSD_LISTEN=127.0.0.1:${PORT[$1]} WSD_LOG_LEVEL=notice \
        WSD_CONTROL_SOCKET=/tmp/wsd-bench-base.sock exec taskset -c 0 "$BASELINE_WSD" ;;
    websocketd) exec taskset -c 0 websocketd --address 127.0.0.1 --port "${PORT[websocketd]}" \
        --loglevel fatal cat ;;
    esac >"$OUT/.exec-$1.log" 2>&1 &
    PID[$1]=$!
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$1]}") 2>/dev/null && return 0
        sleep 0.1
    done
    log "$1 did not start"; return 1
}
stop() {
    for s in "${!PID[@]}"; do kill -TERM "${PID[$s]}" 2>/dev/null; done
    wait 2>/dev/null
}
trap stop EXIT
start wsd && start websocketd || exit 1
# name | wsbench arguments | the two servers compared (websocketd is a line echo: text only)
SCEN=("churn|churn -c 32 -s 32|wsd websocketd" "echo|echo -c 100 -p 16 -s 32|wsd websocketd")
if [ -n "${BASELINE_WSD:-}" ]; then
    start wsd-echo && start baseline-echo || exit 1
    SCEN+=("spawn (echo churn)|churn -c 32 -s 32|wsd-echo baseline-echo")
fi

declare -A RATES
FAILED=0
for run in $(seq "$RUNS"); do
    for entry in "${SCEN[@]}"; do
        IFS='|' read -r sc args pair <<<"$entry"
        for s in $pair; do
            out=$(timeout $((DURATION + 60)) taskset -c 1 "$WSBENCH" $args -d "$DURATION" \
                --url "ws://127.0.0.1:${PORT[$s]}/" --label "$s|$sc|$run" 2>/dev/null)
            rate=$(printf '%s\n' "$out" | grep '^{' | /usr/bin/python3 -c \
                'import json,sys; print(round(json.loads(sys.stdin.read())["rate"]))' 2>/dev/null)
            [ -n "$rate" ] || { FAILED=1; rate=0; }
            RATES[$s|$sc]+="$rate "
            log "run $run $sc $s: $rate/s"
        done
    done
done

. bench/stats.sh
{
    echo "# exec handler vs websocketd ($STAMP, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "Both run cat per connection; medians of $RUNS alternated runs of ${DURATION} s."
    echo
    echo "| scenario | server A | server B | A | B | A/B | runs (A; B) |"
    echo "|---|---|---|---|---|---|---|"
    for entry in "${SCEN[@]}"; do
        IFS='|' read -r sc _ pair <<<"$entry"
        read -r sa sb <<<"$pair"
        a=$(echo "${RATES[$sa|$sc]}" | median)
        b=$(echo "${RATES[$sb|$sc]}" | median)
        echo "| $sc | $sa | $sb | $a/s | $b/s | $(ratio "$a" "$b") | ${RATES[$sa|$sc]% }; ${RATES[$sb|$sc]% } |"
    done
} | tee "$OUT/$STAMP-exec.md"
exit $FAILED
