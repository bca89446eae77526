#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# wss:// against ws:// on the same wsd, in one run: handshake rate (TLS 1.3 and 1.2) and echo
# throughput (small messages, and 64 KiB ones), each as a ratio to ws://. Both schemes are
# driven by the same client loop (wsbench's TLS engine; ws:// with --epoll), cells alternate
# ws/wss, and each figure is the median of RUNS runs. wsd on CPU 0, wsbench on CPU 1.
#
# Environment: DURATION (seconds per run, 5), RUNS (3), BUILD (build). wsd listens on free
# ports (port 0) and the script reads them from its log.
# Prints a markdown table and writes bench/results/<timestamp>-tls.md. The certificate is an
# EC P-256 one made here with openssl (the keyholder's ECDSA signature is the cheap case; an
# RSA-2048 certificate costs about 1 ms of keyholder time per handshake).
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
WSBENCH=$BUILD/bench/wsbench
WSD=$BUILD/wsd
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
OUT=bench/results
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
WORKDIR=$(mktemp -d)
mkdir -p "$OUT"

log() { printf 'tls-bench: %s\n' "$*" >&2; }

if [ ! -x "$WSBENCH" ] || [ ! -x "$WSD" ]; then
    log "run 'make $WSD $WSBENCH' first"
    exit 1
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORKDIR/key.pem" \
    -out "$WORKDIR/cert.pem" -days 1 -subj /CN=127.0.0.1 2>/dev/null || { log "openssl failed"; exit 1; }

WSD_LISTEN=127.0.0.1:0 WSD_TLS_LISTEN=127.0.0.1:0 WSD_TLS_CERT=$WORKDIR/cert.pem \
    WSD_TLS_KEY=$WORKDIR/key.pem WSD_POOL_MIN=32 WSD_MAX_CONNS_PER_IP=0 WSD_ABUSE_LIMIT=0 \
    WSD_LOG_LEVEL=notice WSD_CONTROL_SOCKET=$WORKDIR/ctl.sock \
    taskset -c 0 "$WSD" 2>"$WORKDIR/wsd.log" &
WSD_PID=$!
cleanup() {
    kill -TERM "$WSD_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$WSD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$WSD_PID" 2>/dev/null
    wait "$WSD_PID" 2>/dev/null
    rm -rf "$WORKDIR"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q "listening on wss://" "$WORKDIR/wsd.log" && break; sleep 0.05; done
grep -q "listening on wss://" "$WORKDIR/wsd.log" || { log "wsd did not start"; cat "$WORKDIR/wsd.log" >&2; exit 1; }
WS_PORT=$(sed -n 's|.*listening on ws://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORKDIR/wsd.log")
WSS_PORT=$(sed -n 's|.*listening on wss://127.0.0.1:\([0-9]*\)/.*|\1|p' "$WORKDIR/wsd.log")

# run NAME -- wsbench args: one run, prints the rate (0 if it failed)
run() {
    local out rate
    out=$(timeout $((DURATION * 3 + 30)) taskset -c 1 "$WSBENCH" "$@" -d "$DURATION" 2>&1 | tail -1)
    rate=$(printf '%s' "$out" | sed -n 's/.*"rate":\([0-9.]*\).*/\1/p')
    printf '%s\n' "${rate:-0}"
}

. bench/stats.sh

declare -A R
CELLS=(
    "conn13|conn -c 64|--tls-version 1.3"
    "conn12|conn -c 64|--tls-version 1.2"
    "echo|echo -c 100 -p 16 -s 32|"
    "echo64k|echo -c 100 -p 4 -s 65536 --binary|"
)
for i in $(seq "$RUNS"); do
    for cell in "${CELLS[@]}"; do
        IFS='|' read -r name args tlsargs <<<"$cell"
        # shellcheck disable=SC2086
        R[$name.ws]+="$(run $args --epoll --url ws://127.0.0.1:$WS_PORT/) "
        # shellcheck disable=SC2086
        R[$name.wss]+="$(run $args $tlsargs --url wss://127.0.0.1:$WSS_PORT/) "
        log "run $i $name: ws ${R[$name.ws]}| wss ${R[$name.wss]}"
    done
done

{
    echo "## wss:// vs ws:// on one wsd ($STAMP, medians of $RUNS runs of ${DURATION} s, load $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| cell | ws:// | wss:// | ratio |"
    echo "|---|---|---|---|"
    for cell in "${CELLS[@]}"; do
        IFS='|' read -r name args tlsargs <<<"$cell"
        ws=$(printf '%s' "${R[$name.ws]}" | median)
        wss=$(printf '%s' "${R[$name.wss]}" | median)
        unit=$([ "${name#conn}" != "$name" ] && echo "handshakes/s" || echo "msg/s")
        echo "| $name ($args $tlsargs) | $ws $unit | $wss $unit | $(ratio "$wss" "$ws") |"
    done
} | tee "$OUT/$STAMP-tls.md"
