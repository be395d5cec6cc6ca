#!/usr/bin/env bash
# make bench, burst part (P2): BENCH_BURST (100) POST /instances at once, each to
# `created`, on libvirt's test driver (SF_LIBVIRT_URI=test:///default: domains are defined
# and started in memory, no VM runs; disks and config drives are written for real).  Its
# own redis-server, nats-server, sf-compute and sf-api on free loopback ports; everything
# stopped by PID on exit (tests/e2e/lib.sh).
#   part-burst.sh OUTDIR  -> OUTDIR/burst.json
# Env: BUILD, SF_SRC; BENCH_BURST (100), BENCH_BURST_CONNS (8).
OUT=${1:?usage: part-burst.sh OUTDIR}
SF_SRC=${SF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SF_E2E_BUILD=${BUILD:-$SF_SRC/build}
# shellcheck source=../../tests/e2e/lib.sh
. "$SF_SRC/tests/e2e/lib.sh"

N=${BENCH_BURST:-100}
CONNS=${BENCH_BURST_CONNS:-8}
mkdir -p "$OUT"
# These domains only ever lived in the test driver: no virsh calls for them at cleanup.
bench_cleanup() {
    local rc=$?
    # Not under set -e: `(exit "$rc")` of a failed run must not end the trap before
    # e2e_cleanup has stopped redis-server and nats-server.
    set +e
    stop_pid sf-api; stop_pid sf-compute
    rm -rf "$STORAGE/instances"
    (exit "$rc"); e2e_cleanup
}
trap bench_cleanup EXIT

mkdir -m 0755 "$STORAGE"
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
    SF_STORAGE=$STORAGE SF_DOMAIN_TYPE=qemu SF_LIBVIRT_URI=test:///default \
    SF_TEMPLATES=$SF_SRC/templates SF_MESH_DEV=lo SF_MESH_IP=127.0.0.1 \
    SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
    SF_NATS_PASSWORD_FILE=$W/creds/nats_password
SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export SF_AUTH_SECRET
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
"$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 || fail "sf-ctl bootstrap failed"
start_daemon sf-compute
start_daemon sf-api
wait_until 30 sf-api api_up
TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
        json_get access_token) || fail "POST /auth gave no access_token"
# The scheduler needs the node's first heartbeat.
node_up() { api GET "/nodes/$NODE"; [ "$CODE" = 200 ]; }
wait_until 30 "node heartbeat" node_up
log "node up (api $API, compute on test:///default)"

# CPU time (utime + stime, clock ticks) of each server process, to show where the
# burst's work went.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
declare -A CPU0=()
for p in redis nats sf-api sf-compute; do CPU0[$p]=$(cpu_ticks "${PIDS[$p]}"); done

# CONNS threads POST their share back to back; once all are answered, a poller counts
# `created` in GET /instances every 20 ms.  Rate = N / (last created - first POST).
python3 - "$API" "$TOKEN" "$N" "$CONNS" > "$W/burst.json" <<'EOF' || fail "burst failed"
import http.client, json, sys, threading, time, urllib.parse
api, token, n, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u = urllib.parse.urlparse(api)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
errors = []
refused = [0]
def post(k):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    for i in range(k, n, conns):
        body = {"name": "burst-%d" % i, "cpus": 1, "memory": 64, "disk": [{"size": 1}]}
        # A 507 is the scheduler's back-pressure (upstream's queue filter: a node whose
        # last heartbeat counted more than 20 waiting intents is skipped until the next
        # one): a client retries it, and the wait counts in the rate.
        for attempt in range(300):
            c.request("POST", "/instances", json.dumps(body), h)
            r = c.getresponse(); d = r.read()
            if r.status != 507:
                break
            refused[0] += 1
            time.sleep(0.05)
        if r.status != 200:
            errors.append("%d %s" % (r.status, d[:200]))
threads = [threading.Thread(target=post, args=(k,)) for k in range(conns)]
t0, c0 = time.monotonic(), time.process_time()
for t in threads: t.start()
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
# The last create cannot finish before the last POST is answered: polling starts then,
# so the poller's GETs do not compete with the POSTs for the CPU they measure.
for t in threads: t.join()
posted = time.monotonic() - t0
while True:
    c.request("GET", "/instances", "", h)
    r = c.getresponse(); d = json.loads(r.read())
    states = {}
    for i in d:
        states[i["state"]] = states.get(i["state"], 0) + 1
    if errors or states.get("error"):
        sys.exit("errors: %s %s" % (errors[:3], states))
    if states.get("created", 0) >= n:
        break
    if time.monotonic() - t0 > 600:
        sys.exit("timeout: %s" % states)
    time.sleep(0.02)
total = time.monotonic() - t0
print(json.dumps({"n": n, "posted_s": round(posted or total, 3), "created_s": round(total, 3),
                  "rate": round(n / total, 1), "refused_507": refused[0],
                  "client_cpu_ms": round((time.process_time() - c0) * 1000)}))
EOF
log "burst: $(cat "$W/burst.json")"
hz=$(getconf CLK_TCK)
for p in redis nats sf-api sf-compute; do
    echo "  cpu $p $(( ($(cpu_ticks "${PIDS[$p]}") - CPU0[$p]) * 1000 / hz )) ms"
done
echo "  cpu load-generator (python) $(json_get client_cpu_ms < "$W/burst.json") ms"
# Where the work went: Redis commands over the whole burst (per create: divide by N).
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info commandstats |
    sed -n 's/^cmdstat_\([a-z]*\):calls=\([0-9]*\),usec=\([0-9]*\).*/  redis \1 \2 calls \3 us/p' | sort -k3 -n -r
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info stats | grep total_commands_processed
python3 - "$W/burst.json" "$OUT/burst.json" "$CONNS" <<'EOF' || fail "could not write $OUT/burst.json"
import json, sys
b = json.load(open(sys.argv[1]))
m = {"burst_create_per_s": {"value": b["rate"], "unit": "inst/s", "floor": None, "ratio": None,
                            "target": ">= 100/s", "met": b["rate"] >= 100,
                            "note": "%d POST /instances over %s connections, first POST -> all created "
                                    "(test driver; POSTs done after %.2f s, all created after %.2f s)"
                                    % (b["n"], sys.argv[3], b["posted_s"], b["created_s"])}}
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
log "wrote $OUT/burst.json"
