#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (clang-14, ASan + UBSan) and runs each for TIME seconds (default
# 60) on a corpus seeded from the unit-test vectors. Exits non-zero if any target finds a crash,
# leak or sanitizer report; the reproducer is left in $BUILD/fuzz/artifacts/. Before each run
# the target replays tests/fuzz/regressions/<target>/ (inputs that once found a bug; add a
# reproducer there with the fix), which then also seed the run.
# Usage: tests/fuzz/run.sh [TIME]   (BUILD=build by default; CC=clang-14)
set -eu

time=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${BUILD:-build}/fuzz
cc=${FUZZ_CC:-clang-14}
targets="fuzz_http_upgrade fuzz_ws_reader fuzz_inflate"
srcs="proto/http_upgrade.c proto/ws_reader.c proto/frame.c proto/utf8.c proto/close.c proto/deflate.c"
cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -I$root"

cd "$root"
mkdir -p "$out/artifacts"
/usr/bin/python3 tests/fuzz/make_seeds.py "$out/seeds"
status=0
for t in $targets; do
    echo "fuzz: building $t"
    # shellcheck disable=SC2086
    $cc $cflags -o "$out/$t" "tests/fuzz/$t.c" $srcs -lz
    mkdir -p "$out/corpus/$t"
    # Every input that once found a bug is run again first, and seeds the run.
    regress=tests/fuzz/regressions/$t
    if [ -d "$regress" ] && [ -n "$(ls "$regress")" ]; then
        echo "fuzz: replaying $(ls "$regress" | wc -l) regression inputs of $t"
        if ! UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/$t" "$regress"/* \
            >"$out/$t.regressions.log" 2>&1; then
            echo "fuzz: $t FAILED on a regression input (log: $out/$t.regressions.log)"
            tail -n 40 "$out/$t.regressions.log"
            status=1
            continue
        fi
    else
        regress=
    fi
    echo "fuzz: running $t for ${time}s"
    if ! UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
        "$out/$t" -max_total_time="$time" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
        "$out/corpus/$t" "$out/seeds/$t" ${regress:+"$regress"} >"$out/$t.log" 2>&1; then
        echo "fuzz: $t FAILED (log: $out/$t.log)"
        tail -n 40 "$out/$t.log"
        status=1
    else
        echo "fuzz: $t ok: $(grep -E 'stat::number_of_executed_units' "$out/$t.log" | awk '{print $2}') execs in ${time}s"
    fi
done
exit $status
