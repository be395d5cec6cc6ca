#!/usr/bin/env bash
# Runs every test: unit (cmocka), integration (real redis-server + nats-server on free
# loopback ports), end-to-end (tests/e2e/*.sh: the whole node, a real TCG VM).
# Prints a final line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$(mktemp -d /tmp/sf-test.XXXXXX)
chmod 755 "$W"
PIDS=()
passed=0
failed=0
failed_names=()

LIBVIRT_MINE=0
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    if [ "$LIBVIRT_MINE" = 1 ]; then
        kill "$(cat /run/libvirtd.pid 2>/dev/null)" 2>/dev/null
        kill "$(cat /run/virtlogd.pid 2>/dev/null)" 2>/dev/null
    fi
    rm -rf "$W"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# libvirtd (and virtlogd, which it needs) for the tests that boot guests: started here
# only if not already running, and then stopped by PID at the end.
start_libvirt() {
    if ! alive /run/virtlogd.pid; then virtlogd -d; fi
    if ! alive /run/libvirtd.pid; then
        LIBVIRT_LOG_OUTPUTS="3:file:$W/libvirtd.log" libvirtd -d
        LIBVIRT_MINE=1
    fi
    for _ in $(seq 300); do
        virsh -c qemu:///system version >/dev/null 2>&1 && return 0; sleep 0.1
    done
    echo "libvirtd did not come up"; return 1
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Count cmocka cases from a binary's output; a crash counts as one failure.
run_cmocka() {
    local bin=$1 name out rc p f
    name=$(basename "$bin")
    out=$("$bin" 2>&1); rc=$?
    echo "$out" > "$W/$name.log"
    p=$(echo "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(echo "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        failed_names+=("$name")
        echo "FAIL $name ($p passed, $f failed)"; echo "$out" | grep -E 'ERROR|FAILED|LINE|error' | head -20
    else
        echo "ok   $name ($p)"
    fi
}

echo "== unit"
for t in build/tests/test_*; do
    src=tests/unit/$(basename "$t").c
    [ -f "$src" ] && run_cmocka "$t"
done

# Fuzz targets (tests/fuzz, docs/fuzzing.md): built with clang and every kept corpus and
# crash input run once, so a regression on a fixed reproducer fails here. `make fuzz` fuzzes.
echo "== fuzz replay"
if ! make --no-print-directory fuzz-build > "$W/fuzz-build.log" 2>&1; then
    failed=$((failed + 1)); failed_names+=("fuzz-build"); echo "FAIL fuzz-build"; tail -20 "$W/fuzz-build.log"
else
    out=$(tests/fuzz/run.sh --replay build/fuzz 2>&1)
    while read -r line; do
        case "$line" in
            "fuzz: "*) ;;
            *" ok") passed=$((passed + 1)); echo "ok   fuzz/$(echo "$line" | tr -s " ")" ;;
            *FAIL*) failed=$((failed + 1)); failed_names+=("fuzz/${line%% *}"); echo "FAIL fuzz/$(echo "$line" | tr -s " ")" ;;
        esac
    done <<< "$out"
fi

echo "== integration"
start_libvirt
RPORT=$(free_port); NPORT=$(free_port)
# Both servers want credentials, as under `make run` (tools/sf-creds).
tools/sf-creds "$W/creds" || exit 1
redis-server "$W/creds/redis.conf" --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no \
    --dir "$W" > "$W/redis.log" 2>&1 & PIDS+=($!)
nats-server -c "$W/creds/nats.conf" -js -a 127.0.0.1 -p "$NPORT" -sd "$W/js" \
    > "$W/nats.log" 2>&1 & PIDS+=($!)
for _ in $(seq 50); do
    REDISCLI_AUTH=$(cat "$W/creds/redis_password") redis-cli -p "$RPORT" ping 2>/dev/null |
        grep -q PONG && break
    sleep 0.1
done
export SF_REDIS_HOST=127.0.0.1 SF_REDIS_PORT=$RPORT SF_NATS_URL=nats://127.0.0.1:$NPORT \
    SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
    SF_NATS_PASSWORD_FILE=$W/creds/nats_password
for t in build/tests/test_*; do
    src=tests/integration/$(basename "$t").c
    [ -f "$src" ] && run_cmocka "$t"
done
unset SF_REDIS_HOST SF_REDIS_PORT SF_NATS_URL SF_REDIS_PASSWORD_FILE SF_NATS_USER SF_NATS_PASSWORD_FILE

echo "== end-to-end"
for e in tests/e2e/*.sh; do
    [ -f "$e" ] && [ -x "$e" ] || continue   # lib.sh (sourced helpers) is not executable
    name=$(basename "$e" .sh)
    if "$e" > "$W/e2e-$name.log" 2>&1; then
        passed=$((passed + 1)); echo "ok   e2e/$name"
    else
        failed=$((failed + 1)); failed_names+=("e2e/$name"); echo "FAIL e2e/$name"
        # the test's own steps first (its FAIL line is among them), then the log tails
        grep -E '^\[[0-9:]+ \+[0-9]+s\]' "$W/e2e-$name.log" | tail -25
        echo "---- end of steps"
        tail -40 "$W/e2e-$name.log"
    fi
done

[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
