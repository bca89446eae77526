#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The single test runner (`make test` and `make asan` call it; STYLE.md section 10).
#
#   BUILD=build tests/run.sh [PATTERN...]
#
# Runs every suite, each file under a timeout, and counts TAP results one per case:
#   unit         $BUILD/tests/test_*                 cmocka, CMOCKA_MESSAGE_OUTPUT=TAP
#   integration  tests/integration/test_*.py         Debian's /usr/bin/python3 (python3-websockets)
#                tests/integration/test_*.mjs        node --test --test-reporter=tap (npm ws)
#   browser      tests/browser/test_*.mjs            the same, driving headless Chromium
# with WSD_BIN=$PWD/$BUILD/wsd in the environment. PATTERNs (substrings of file names) run only
# the matching files. After each file it looks for processes the file left behind (wsd or
# anything else it started, found by a marker in their environment) and for zombies, reports
# them as a failed test `<file>: leftover processes` and kills them. A file that crashes, exits
# non-zero without a failed case, runs fewer cases than its plan or times out counts as a failure.
# Lists failed, timed-out and skipped tests, then ends with one line:
#   N passed, N failed, N skipped
# and exits 1 if anything failed. Each file's whole output is kept in $BUILD/test-logs/.
#
# Environment: WSD_TEST_TIMEOUT (seconds per file, default 120), V=1 (print every file's output,
# not only failing ones), WSD_TEST_SLOW (scale the tests' own time bounds, e.g. 2).
set -u
shopt -s nullglob

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
TIMEOUT=${WSD_TEST_TIMEOUT:-120}
PYTHON=/usr/bin/python3 # Debian's, with python3-websockets; not a pyenv/venv python3 on PATH
case $BUILD in
/*) export WSD_BIN="$BUILD/wsd" ;;
*) export WSD_BIN="$PWD/$BUILD/wsd" ;;
esac
mkdir -p "$BUILD/test-logs"
LOGDIR=$(cd "$BUILD/test-logs" && pwd)
rm -f "$LOGDIR"/*.log

passed=0 failed=0 skipped=0
failed_names=() skipped_names=() timedout_names=()
nfile=0

want() { # want NAME: true if no PATTERN was given or NAME matches one
    local p
    (( ${#patterns[@]} )) || return 0
    for p in "${patterns[@]}"; do [[ $1 == *"$p"* ]] && return 0; done
    return 1
}
patterns=("$@")

fail() { # fail NAME: one failed test
    failed=$((failed + 1))
    failed_names+=("$1")
}

# ---- TAP

# count_tap LABEL LOG: count the unindented TAP result lines of LOG (nested subtests are indented
# and ignored); sets tap_results, tap_notok, tap_plan. Lines that are not results are ignored.
count_tap() {
    local label=$1 log=$2 line rest name directive
    tap_results=0 tap_notok=0 tap_plan=
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%$'\r'}
        if [[ $line =~ ^1\.\.([0-9]+) ]]; then
            tap_plan=${BASH_REMATCH[1]}
            continue
        fi
        [[ $line =~ ^(not\ )?ok($|[[:space:]]) ]] || continue
        tap_results=$((tap_results + 1))
        rest=${line#not }
        rest=${rest#ok}
        # "ok 3 - name # SKIP reason": drop the number and the dash, split off the directive
        [[ $rest =~ ^[[:space:]]*[0-9]*[[:space:]]*-?[[:space:]]*(.*)$ ]] && rest=${BASH_REMATCH[1]}
        name=$rest directive=
        if [[ $rest =~ ^(.*[^\\])?[[:space:]]*#[[:space:]]*((SKIP|skip|Skip|TODO|todo|Todo).*)$ ]]; then
            name=${BASH_REMATCH[1]}
            directive=${BASH_REMATCH[2]}
        fi
        [[ $name =~ ^(.*[^[:space:]])[[:space:]]*$ ]] && name=${BASH_REMATCH[1]}
        name="$label: ${name:-#$tap_results}"
        if [[ $directive =~ ^[Ss][Kk][Ii][Pp] ]]; then
            skipped=$((skipped + 1))
            skipped_names+=("$name ($directive)")
        elif [[ $directive =~ ^[Tt][Oo][Dd][Oo] ]]; then
            skipped=$((skipped + 1)) # a TODO case neither passes nor fails the run
            skipped_names+=("$name ($directive)")
        elif [[ $line == not* ]]; then
            tap_notok=$((tap_notok + 1))
            fail "$name"
        else
            passed=$((passed + 1))
        fi
    done <"$log"
}

# ---- processes

# marked_pids MARKER: pids whose environment holds WSDTEST_RUN=MARKER (everything a test file
# started, however deep, even re-parented: wsd and its clones keep their environment)
marked_pids() {
    local d env
    for d in /proc/[0-9]*; do
        [ "${d#/proc/}" = "$$" ] && continue
        mapfile -d '' -t env 2>/dev/null <"$d/environ" || continue
        [[ " ${env[*]} " == *" WSDTEST_RUN=$1 "* ]] && echo "${d#/proc/}"
    done
}

# zombie_pids: "pid:ppid:comm" of every zombie
zombie_pids() {
    local d st comm ppid
    for d in /proc/[0-9]*; do
        st=
        { IFS= read -r -d '' st; } 2>/dev/null <"$d/status"
        [ -n "$st" ] || continue
        [[ $st =~ State:[[:space:]]*Z ]] || continue
        [[ $st =~ Name:[[:space:]]*([^$'\n']*) ]] && comm=${BASH_REMATCH[1]}
        [[ $st =~ PPid:[[:space:]]*([0-9]+) ]] && ppid=${BASH_REMATCH[1]}
        echo "${d#/proc/}:$ppid:$comm"
    done
}

describe() { # describe PID...: "pid(comm,state,exe)"
    local p out=() comm state exe
    for p in "$@"; do
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || { out+=("$p(gone)"); continue; }
        state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$p/status" 2>/dev/null)
        exe=$(readlink "/proc/$p/exe" 2>/dev/null)
        out+=("$p($comm,$state,${exe:-?})")
    done
    echo "${out[*]}"
}

# check_leftovers LABEL MARKER ZOMBIES_BEFORE: the file's processes still alive, and zombies it
# caused: children of its processes, or wsd processes orphaned to PID 1 and never reaped. (A
# zombie of some other wsd running on the machine at the same time is not counted: it is
# reaped within the recheck delay, or its parent is neither marked nor PID 1.)
check_leftovers() {
    local label=$1 marker=$2 before=$3 pids z zp pp new=() cand=() zl
    # workers die by PDEATHSIG after their supervisor: give stragglers a moment
    for _ in $(seq 30); do
        pids=$(marked_pids "$marker")
        [ -z "$pids" ] && break
        sleep 0.1
    done
    local marked=" ${pids//$'\n'/ } "
    mapfile -t zl < <(zombie_pids)
    for z in "${zl[@]}"; do
        zp=${z%%:*}
        pp=${z#*:}
        pp=${pp%%:*}
        [[ " $before " == *" $zp "* ]] && continue
        if [[ $marked == *" $pp "* ]] || { [ "$pp" = 1 ] && [[ ${z#*:*:} == wsd* ]]; }; then
            cand+=("$z")
        fi
    done
    if (( ${#cand[@]} )); then
        sleep 0.5 # a zombie reaped by now was only exiting
        for z in "${cand[@]}"; do
            grep -q '^State:[[:space:]]*Z' "/proc/${z%%:*}/status" 2>/dev/null && new+=("$z")
        done
    fi
    if [ -n "$pids" ] || (( ${#new[@]} )); then
        fail "$label: leftover processes"
        # shellcheck disable=SC2086
        echo "  LEFTOVER $label: processes: $(describe $pids) zombies (pid:ppid:comm): ${new[*]:-none}"
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    fi
}

# ---- one file

# run_file LABEL CMD...: run CMD under the timeout with a fresh marker, count its TAP, check
# what it left.
run_file() {
    local label=$1
    shift
    nfile=$((nfile + 1))
    local log
    log=$LOGDIR/$(printf '%02d' $nfile)-${label//\//_}.log
    local marker="$$-$nfile-$RANDOM"
    local zbefore
    zbefore=$(zombie_pids | cut -d: -f1 | tr '\n' ' ')
    local t0=$SECONDS rc
    # (the braces keep bash's own "Segmentation fault" notice out of the output: the summary
    # names the signal)
    { WSDTEST_RUN=$marker timeout -k 5 "$TIMEOUT" "$@" >"$log" 2>&1 </dev/null; } 2>/dev/null
    rc=$?
    local took=$((SECONDS - t0)) to=
    # 124: timeout sent SIGTERM; 137: it had to SIGKILL (or something else did, before the limit)
    if [ $rc -eq 124 ] || { [ $rc -eq 137 ] && [ $took -ge "$TIMEOUT" ]; }; then to="  TIMED OUT"; fi
    local f0=$failed s0=$skipped p0=$passed
    count_tap "$label" "$log"
    # at most one failure for the file as a whole, besides its cases' own
    if [ -n "$to" ]; then
        failed=$((failed + 1))
        timedout_names+=("$label (after ${TIMEOUT} s)")
    elif [ $rc -eq 77 ] && [ $tap_results -eq 0 ]; then
        skipped=$((skipped + 1))
        skipped_names+=("$label (exit 77: $(tail -n 1 "$log"))")
    elif [ $rc -gt 128 ] && [ $rc -lt 160 ]; then
        fail "$label: killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null)) after $tap_results of ${tap_plan:-?} cases"
    elif [ $tap_results -eq 0 ]; then
        fail "$label: no TAP results (exit status $rc)"
    elif [ -n "$tap_plan" ] && [ "$tap_results" -lt "$tap_plan" ]; then
        fail "$label: planned $tap_plan cases, ran $tap_results (exit status $rc)"
    elif [ $rc -ne 0 ] && [ $tap_notok -eq 0 ]; then
        fail "$label: exit status $rc with no failed case"
    fi
    check_leftovers "$label" "$marker" "$zbefore"
    printf '%-28s %3d passed %3d failed %3d skipped  %3ds%s\n' "$label" $((passed - p0)) \
        $((failed - f0)) $((skipped - s0)) "$took" "$to"
    if [ "${V:-0}" = 1 ]; then
        sed 's/^/    /' "$log"
    elif [ $failed -ne $f0 ]; then
        # what failed and its diagnostics: leave out passing results and their YAML blocks
        awk '/^ok / { skip = 1; next }
             skip && /^  (---|\.\.\.|[a-z_]+:)/ { next }
             { skip = 0; print "    " $0 }' "$log"
    fi
}

# ---- unit

for t in "$BUILD"/tests/test_*; do
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
    want "$(basename "$t")" || continue
    CMOCKA_MESSAGE_OUTPUT=TAP run_file "unit/$(basename "$t")" "$t"
done

# ---- integration

it=${WSD_TEST_DIR:-tests/integration} # another directory: for testing this runner
py_files=() mjs_files=()
for f in "$it"/test_*.py; do want "$(basename "$f")" && py_files+=("$f"); done
[ -z "${WSD_TEST_DIR:-}" ] && for f in tests/conformance/test_*.py; do want "$(basename "$f")" && py_files+=("$f"); done
for f in "$it"/test_*.mjs; do want "$(basename "$f")" && mjs_files+=("$f"); done

if (( ${#py_files[@]} + ${#mjs_files[@]} )) && [ ! -x "$WSD_BIN" ]; then
    echo "run.sh: $WSD_BIN is missing: build it first (make test does)" >&2
    for f in "${py_files[@]}" "${mjs_files[@]}"; do fail "${f#tests/}: $BUILD/wsd is missing"; done
    py_files=() mjs_files=()
fi

if (( ${#py_files[@]} )) && [ ! -x "$PYTHON" ]; then
    for f in "${py_files[@]}"; do fail "${f#tests/}: $PYTHON is missing (apt-get install python3 python3-websockets)"; done
    py_files=()
fi
for f in "${py_files[@]}"; do
    run_file "${f#tests/}" "$PYTHON" "$f"
done

if (( ${#mjs_files[@]} )); then
    node_ok=1
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        node_ok=0
        why="node or npm is missing (apt-get install nodejs npm)"
    elif [ ! -f "$it/node_modules/ws/package.json" ]; then
        if [ -f "$it/package-lock.json" ]; then npm_cmd=(npm ci --no-audit --no-fund); else npm_cmd=(npm install --no-audit --no-fund); fi
        echo "run.sh: ${npm_cmd[*]} in $it"
        if ! (cd "$it" && timeout 300 "${npm_cmd[@]}" >"$LOGDIR/npm.log" 2>&1); then
            node_ok=0
            why="'${npm_cmd[*]}' failed (see $LOGDIR/npm.log)"
            sed 's/^/    /' "$LOGDIR/npm.log" | tail -n 20
        fi
    fi
    for f in "${mjs_files[@]}"; do
        if [ $node_ok = 1 ]; then
            run_file "${f#tests/}" node --test --test-reporter=tap "$f"
        else
            fail "${f#tests/}: $why"
        fi
    done
fi

# ---- browser (headless Chromium via playwright-core)
browser_files=()
if [ -z "${WSD_TEST_DIR:-}" ] && [ -x "$WSD_BIN" ]; then
    for f in tests/browser/test_*.mjs; do want "$(basename "$f")" && browser_files+=("$f"); done
fi
if (( ${#browser_files[@]} )); then
    why=
    if [ ! -x /usr/bin/chromium ]; then
        why="/usr/bin/chromium is missing (apt-get install chromium)"
    elif [ ! -f tests/browser/node_modules/playwright-core/package.json ] &&
         ! (cd tests/browser && timeout 300 npm ci --no-audit --no-fund >"$LOGDIR/npm-browser.log" 2>&1); then
        why="'npm ci' failed (see $LOGDIR/npm-browser.log)"
    fi
    for f in "${browser_files[@]}"; do
        if [ -n "$why" ]; then
            fail "${f#tests/}: $why"
        else
            run_file "${f#tests/}" node --test --test-reporter=tap "$f"
        fi
    done
fi

# ---- summary

if (( ${#failed_names[@]} )); then
    echo "failed:"
    printf '  %s\n' "${failed_names[@]}"
fi
if (( ${#timedout_names[@]} )); then
    echo "timed out:"
    printf '  %s\n' "${timedout_names[@]}"
fi
if (( ${#skipped_names[@]} )); then
    echo "skipped:"
    printf '  %s\n' "${skipped_names[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
