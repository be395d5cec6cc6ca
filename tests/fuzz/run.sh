#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz-build` (docs/fuzzing.md).
#   tests/fuzz/run.sh BUILD_FUZZ            fuzz each target FUZZ_SECONDS (60) on its corpus,
#                                            new inputs go to BUILD_FUZZ/scratch/<target>
#                                            (merged into the git corpus if FUZZ_UPDATE=1)
#   tests/fuzz/run.sh --replay BUILD_FUZZ   run every corpus and crashes/ input once
# FUZZ_TARGETS="body jwt" limits the run to those. Fails on any crash, leak, timeout,
# out-of-memory or sanitizer report; prints a table of target, execs/s, execs, corpus, result.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
replay=0
if [ "${1:-}" = "--replay" ]; then replay=1; shift; fi
B=${1:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
export SF_TEMPLATES=$ROOT/templates
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}
LOGS=$B/logs
mkdir -p "$LOGS"

targets=${FUZZ_TARGETS:-$(for d in tests/fuzz/*/; do d=${d%/}; [ -f "$d/fuzz_$(basename "$d").c" ] && basename "$d"; done)}
failed=()
rows=()

for t in $targets; do
    bin=$B/fuzz_$t corpus=tests/fuzz/$t/corpus crashes=tests/fuzz/$t/crashes log=$LOGS/$t.log
    if [ ! -x "$bin" ]; then
        failed+=("$t"); rows+=("$(printf '%-10s %10s %12s %8s %s' "$t" - - - "FAIL (not built)")"); continue
    fi
    if [ "$replay" = 1 ]; then
        inputs=()
        for f in "$corpus"/* "$crashes"/*; do [ -f "$f" ] && inputs+=("$f"); done
        if [ ${#inputs[@]} -eq 0 ]; then rows+=("$(printf '%-10s %s' "$t" "no inputs")"); continue; fi
        if "$bin" -timeout=10 "${inputs[@]}" > "$log" 2>&1; then
            rows+=("$(printf '%-10s %6d inputs  ok' "$t" ${#inputs[@]})")
        else
            failed+=("$t"); rows+=("$(printf '%-10s %6d inputs  FAIL (%s)' "$t" ${#inputs[@]} "$log")")
        fi
        continue
    fi
    scratch=$B/scratch/$t art=$B/artifacts/$t
    mkdir -p "$scratch" "$art" "$corpus"
    dirs=("$scratch" "$corpus")
    [ -d "$crashes" ] && dirs+=("$crashes")
    # -close_fd_mask=2: the code's own log lines would flood the log; sanitizer and
    # FUZZ_CHECK reports still come through.
    nice -n 10 timeout -k 10 $((SECONDS_EACH * 2 + 60)) "$bin" -max_total_time="$SECONDS_EACH" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -close_fd_mask=2 \
        -artifact_prefix="$art/" "${dirs[@]}" > "$log" 2>&1
    rc=$?
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ] && ! grep -qE '^(==[0-9]+==ERROR|SUMMARY: )|runtime error:' "$log"; then
        result=ok
        if [ "${FUZZ_UPDATE:-0}" = 1 ]; then
            "$bin" -merge=1 -close_fd_mask=2 "$corpus" "$scratch" >> "$log" 2>&1 || result="ok (merge failed)"
        fi
    else
        failed+=("$t")
        why=$(grep -E 'check failed|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|ERROR: libFuzzer' "$log" |
              head -1 | cut -c1-100)
        result="FAIL rc=$rc: $why (log $log, input in $art/)"
    fi
    rows+=("$(printf '%-10s %10s %12s %8s %s' "$t" "${eps:--}" "${runs:--}" "${corp:--}" "$result")")
done

if [ "$replay" = 1 ]; then
    printf '%s\n' "${rows[@]}"
else
    printf '%-10s %10s %12s %8s %s\n' target execs/s execs corpus result
    printf '%s\n' "${rows[@]}"
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: all targets ok"
