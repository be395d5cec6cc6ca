#!/usr/bin/env bash
# make bench, SSE part: fan-out latency of GET /events/stream to 200 subscribers, from
# the publish (sf_event_emit: Redis, then JetStream) to the receipt by each subscriber
# (tools/bench/sse_fanout.c; one clock, one process).  Its own redis-server, nats-server
# and sf-api on free loopback ports; everything stopped by PID on exit (tests/e2e/lib.sh).
#   part-sse.sh OUTDIR  -> OUTDIR/sse.json
# Env: BUILD (absolute build dir), SF_SRC (repo root); BENCH_SSE_SUBSCRIBERS (200),
# BENCH_SSE_EVENTS (400), BENCH_SSE_RATE (40 events a second).
OUT=${1:?usage: part-sse.sh OUTDIR}
SF_SRC=${SF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SF_E2E_BUILD=${BUILD:-$SF_SRC/build}
# shellcheck source=../../tests/e2e/lib.sh
. "$SF_SRC/tests/e2e/lib.sh"

SUBS=${BENCH_SSE_SUBSCRIBERS:-200}
EVENTS=${BENCH_SSE_EVENTS:-400}
RATE=${BENCH_SSE_RATE:-40}
FANOUT=$BUILD/bench/sse_fanout
[ -x "$FANOUT" ] || fail "$FANOUT is missing (make bench builds it)"
mkdir -p "$OUT"

# ---- redis, nats and sf-api only ------------------------------------------------------------
REDIS_PORT=$(free_port); NATS_PORT=$(free_port); NATS_MON_PORT=$(free_port); API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
"$SF_SRC/tools/sf-creds" "$W/creds" > /dev/null || fail "tools/sf-creds failed"
REDISCLI_AUTH=$(cat "$W/creds/redis_password")
export REDISCLI_AUTH
start_redis
start_nats
wait_until 20 redis redis_up
wait_until 20 nats nats_up
unset SF_AUTH_SECRET_FILE SF_REDIS_PASSWORD SF_NATS_PASSWORD
export SF_NODE=$NODE SF_REDIS_HOST=127.0.0.1 SF_REDIS_PORT=$REDIS_PORT \
    SF_NATS_URL=nats://127.0.0.1:$NATS_PORT SF_API_BIND=127.0.0.1 SF_API_PORT=$API_PORT \
    SF_STORAGE=$STORAGE SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
    SF_NATS_PASSWORD_FILE=$W/creds/nats_password SF_STREAM_MAX_SUBSCRIBERS=$((SUBS + 16))
SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export SF_AUTH_SECRET
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
"$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 || fail "sf-ctl bootstrap failed"
start_daemon sf-api
wait_until 30 sf-api api_up
TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
        json_get access_token) || fail "POST /auth gave no access_token"
log "sf-api up ($API); $SUBS subscribers, $EVENTS events at $RATE/s"

# ---- measure ----------------------------------------------------------------------------------
"$FANOUT" "$API_PORT" "$TOKEN" "$SUBS" "$EVENTS" "$RATE" > "$W/fanout.json" ||
    fail "sse_fanout failed: $(cat "$W/fanout.json")"
log "sse_fanout: $(cat "$W/fanout.json")"
python3 - "$W/fanout.json" "$OUT/sse.json" <<'PY' || fail "writing sse.json failed"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["missed"] == 0 and r["samples"] > 0, r
out = {
    "sse_fanout_p50_ms": {"value": r["p50_ms"], "unit": "ms", "floor": None, "ratio": None,
                          "target": "-", "met": None},
    "sse_fanout_p99_ms": {"value": r["p99_ms"], "unit": "ms", "floor": None, "ratio": None,
                          "target": "< 50 ms", "met": r["p99_ms"] < 50},
}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print(f"{r['subscribers']} subscribers x {r['events']} events = {r['samples']} samples: "
      f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")
PY
