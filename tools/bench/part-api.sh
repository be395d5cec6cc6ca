#!/usr/bin/env bash
# make bench, API part: GET /instances with 1,000 instances stored, and GET /instances/<uuid>
# beside redis-benchmark GET on the same Redis (the floor).  Its own redis-server,
# nats-server, sf-compute (libvirt's test:///default driver: no VM runs) and sf-api on free
# loopback ports; everything stopped by PID on exit (tests/e2e/lib.sh).
#   part-api.sh OUTDIR  -> OUTDIR/api.json
# Env: BUILD (absolute build dir), SF_SRC (repo root); BENCH_INSTANCES (1000),
# BENCH_SECONDS (5, per measurement), BENCH_CONNS_LIST (2), BENCH_CONNS_GET (16).
OUT=${1:?usage: part-api.sh OUTDIR}
SF_SRC=${SF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SF_E2E_BUILD=${BUILD:-$SF_SRC/build}
# shellcheck source=../../tests/e2e/lib.sh
. "$SF_SRC/tests/e2e/lib.sh"

N=${BENCH_INSTANCES:-1000}
SECS=${BENCH_SECONDS:-5}
CONNS_LIST=${BENCH_CONNS_LIST:-2}
CONNS_GET=${BENCH_CONNS_GET:-16}
HTTPLOAD=$BUILD/bench/httpload
[ -x "$HTTPLOAD" ] || fail "$HTTPLOAD is missing (make bench builds it)"
mkdir -p "$OUT"
# lib.sh's cleanup would ask qemu:///system about every instance directory (1,000 virsh
# calls): these domains only ever lived in the test driver, so their directories go first.
bench_cleanup() {
    local rc=$?
    stop_pid sf-api; stop_pid sf-compute
    rm -rf "$STORAGE/instances"
    (exit "$rc"); e2e_cleanup
}
trap bench_cleanup EXIT

# ---- a node with sf-compute on the test driver and sf-api only ----------------------------
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
# 1,000 instances on one test-driver node exceed upstream's overcommit limits (16 vCPUs per CPU,
# 3x RAM): the scheduler would refuse them (507), so the bench lifts the limits.
export SF_CPU_OVERCOMMIT_RATIO=1000 SF_RAM_OVERCOMMIT_RATIO=1000
SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export SF_AUTH_SECRET
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
"$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 || fail "sf-ctl bootstrap failed"
start_daemon sf-compute
start_daemon sf-api
wait_until 30 sf-api api_up
TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
        json_get access_token) || fail "POST /auth gave no access_token"
log "node up (api $API, compute on test:///default)"

# ---- 1,000 instances (one blank disk, no NICs), all created ----------------------------------
t0=$SECONDS
python3 - "$API" "$TOKEN" "$N" > "$W/uuids" <<'EOF' || fail "creating instances failed"
import http.client, json, sys, time, urllib.parse
api, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(api)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
body = {"cpus": 1, "memory": 64, "disk": [{"size": 1}]}
deadline = time.time() + 60
i = 0
while i < n:
    body["name"] = "bench-%d" % i
    c.request("POST", "/instances", json.dumps(body), h)
    r = c.getresponse(); data = r.read()
    if r.status == 507 and time.time() < deadline:   # the node's first heartbeat is not in yet
        time.sleep(0.5); continue
    if r.status != 200:
        sys.exit("POST /instances: %d %s" % (r.status, data[:300]))
    print(json.loads(data)["uuid"]); i += 1
EOF
log "$N instances requested in $((SECONDS - t0)) s"
all_created() {
    python3 - "$API" "$TOKEN" "$N" <<'EOF'
import http.client, json, sys, urllib.parse, collections
api, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(api)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
c.request("GET", "/instances", "", {"Authorization": "Bearer " + token})
r = c.getresponse(); d = json.loads(r.read())
states = collections.Counter(i["state"] for i in d)
print(dict(states), file=sys.stderr)
if states.get("error"):
    sys.exit(2)
sys.exit(0 if states.get("created", 0) == n else 1)
EOF
}
start=$SECONDS
while :; do
    rc=0; all_created 2> "$W/states" || rc=$?
    [ $rc = 0 ] && break
    [ $rc = 2 ] && fail "instances went to error: $(cat "$W/states")"
    [ $((SECONDS - start)) -lt 900 ] || fail "timeout waiting for $N instances to be created: $(cat "$W/states")"
    sleep 2
done
log "$N instances created in $((SECONDS - t0)) s"

# Development: BENCH_HOLD=FILE writes "API TOKEN W" there and waits until it is removed
# (e.g. to restart sf-api with a new build against the same 1,000 instances).
if [ -n "${BENCH_HOLD:-}" ]; then
    echo "$API $TOKEN $W" > "$BENCH_HOLD"
    while [ -f "$BENCH_HOLD" ]; do sleep 1; done
fi

# ---- measurements ---------------------------------------------------------------------------
# A fresh token: creating the instances may take longer than a token lives (15 minutes).
TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
        json_get access_token) || fail "POST /auth gave no access_token"
AUTH="Authorization: Bearer $TOKEN"
"$HTTPLOAD" -c "$CONNS_LIST" -d "$SECS" -w 1 -H "$AUTH" "$API/instances" > "$W/list.json" ||
    fail "httpload (list) failed"
log "GET /instances: $(cat "$W/list.json")"
# The same list right after a change (one instance's metadata set before each GET, so no
# whole-list answer is reusable and the changed instance is rendered again): the GETs only
# are timed, one connection, BENCH_CHANGED_SAMPLES (300) of them.
python3 - "$API" "$TOKEN" "$W/uuids" "${BENCH_CHANGED_SAMPLES:-300}" > "$W/changed.json" <<'EOF2' ||
import http.client, json, sys, time, urllib.parse
api, token, uuids, n = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().split(), int(sys.argv[4])
u = urllib.parse.urlparse(api)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
h = {"Authorization": "Bearer " + token}
lat = []
for i in range(n):
    c.request("PUT", "/instances/%s/metadata/bench" % uuids[i % len(uuids)], json.dumps({"value": str(i)}), h)
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit("PUT metadata: %d" % r.status)
    t = time.perf_counter()
    c.request("GET", "/instances", "", h)
    r = c.getresponse(); body = r.read()
    lat.append((time.perf_counter() - t) * 1000)
    if r.status != 200:
        sys.exit("GET /instances: %d" % r.status)
lat.sort()
print(json.dumps({"requests": n, "p50_ms": lat[n // 2], "p99_ms": lat[min(n - 1, int(n * 0.99))]}))
EOF2
    fail "list after a change failed"
log "GET /instances after a change: $(cat "$W/changed.json")"
# The get-one request list: every stored instance in turn, so no single key is hot.
mapfile -t UUIDS < "$W/uuids"
"$HTTPLOAD" -c "$CONNS_GET" -d "$SECS" -w 1 -H "$AUTH" "$API/instances/${UUIDS[0]}" \
    "${UUIDS[@]/#//instances/}" > "$W/get.json" || fail "httpload (get one) failed"
log "GET /instances/<uuid>: $(cat "$W/get.json")"
# The floor: redis-benchmark GET on the same Redis, as many clients as the API had
# connections.  redis-benchmark 7.0 takes the password only as -a (no REDISCLI_AUTH); it is
# this run's throwaway password, on loopback.
redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -a "$REDISCLI_AUTH" -t get \
    -c "$CONNS_GET" -n $((SECS * 40000)) -d 3 -r 1000 --csv > "$W/redis.csv" 2> "$W/redis-bench.err" ||
    fail "redis-benchmark failed: $(cat "$W/redis-bench.err")"
log "redis-benchmark: $(tr '\n' ' ' < "$W/redis.csv")"

python3 - "$W/list.json" "$W/get.json" "$W/redis.csv" "$OUT/api.json" "$CONNS_LIST" "$CONNS_GET" "$N" \
    "$W/changed.json" <<'EOF' ||
import csv, json, sys
lst, get = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
chg = json.load(open(sys.argv[8]))
rows = [r for r in csv.reader(open(sys.argv[3])) if r and r[0].startswith("GET")]
floor = float(rows[0][1])
cl, cg, n = sys.argv[5], sys.argv[6], sys.argv[7]
for name, d in (("list", lst), ("get", get)):
    if d["errors"] or not d["requests"]:
        sys.exit("%s: %d errors, %d requests" % (name, d["errors"], d["requests"]))
ratio = get["rps"] / floor
m = {
    "list_1000_p50_ms": {"value": lst["p50_ms"], "unit": "ms", "floor": None, "ratio": None,
                         "target": "< 5 ms", "met": lst["p50_ms"] < 5,
                         "note": "GET /instances, %s instances, %s connections" % (n, cl)},
    "list_1000_p99_ms": {"value": lst["p99_ms"], "unit": "ms", "floor": None, "ratio": None,
                         "target": "< 20 ms", "met": lst["p99_ms"] < 20,
                         "note": "GET /instances, %s instances, %s connections" % (n, cl)},
    "list_1000_changed_p50_ms": {"value": round(chg["p50_ms"], 3), "unit": "ms", "floor": None, "ratio": None,
                                 "target": "", "met": None,
                                 "note": "GET /instances right after one instance changed, 1 connection"},
    "list_1000_changed_p99_ms": {"value": round(chg["p99_ms"], 3), "unit": "ms", "floor": None, "ratio": None,
                                 "target": "", "met": None,
                                 "note": "GET /instances right after one instance changed, 1 connection"},
    "list_1000_rps": {"value": lst["rps"], "unit": "req/s", "floor": None, "ratio": None,
                      "target": "", "met": None,
                      "note": "GET /instances, %s connections" % cl},
    "get_one_rps": {"value": get["rps"], "unit": "req/s", "floor": floor, "ratio": round(ratio, 3),
                    "target": ">= 10000 req/s and ratio >= 0.25",
                    "met": get["rps"] >= 10000 and ratio >= 0.25,
                    "note": "GET /instances/<uuid>, %s connections; floor redis-benchmark -t get -c %s" % (cg, cg)},
    "get_one_p99_ms": {"value": get["p99_ms"], "unit": "ms", "floor": None, "ratio": None,
                       "target": "", "met": None, "note": "GET /instances/<uuid>, %s connections" % cg},
    "redis_get_rps": {"value": floor, "unit": "req/s", "floor": None, "ratio": None,
                      "target": "", "met": None, "note": "redis-benchmark -t get -c %s" % cg},
}
json.dump(m, open(sys.argv[4], "w"), indent=1)
EOF
    fail "could not write $OUT/api.json"
log "wrote $OUT/api.json"
