#!/usr/bin/env bash
# The scheduler and nodes on THREE nodes: one redis/nats/sf-api and three sf-compute
# processes (SF_NODE <id>-a/-b/-c) on libvirt's test driver (no VM runs; blank disks and no
# NICs need no sf-network or sf-blob).
#   - affinity +100 co-locates with the tagged instance, -100 separates (three nodes, three
#     instances that each avoid the others), `sf instance create -m` for one of them;
#   - 507 with upstream's messages and a `schedule ...` audit event per stage;
#   - a node silent for SF_NODE_CHECKIN_MAXIMUM (8 s here) becomes `missing` (state and
#     mutate event, `sf node list` shows it), is never scheduled, and returns to `created`
#     when it heartbeats again;
#   - usage events (SF_USAGE_EVENT_FREQUENCY=2) per instance and a node resources event.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SF=$BUILD/sf
NODES=("$NODE-a" "$NODE-b" "$NODE-c")

sched_cleanup() {
    local rc=$? n
    set +e   # (exit "$rc") below must not end the trap before e2e_cleanup
    for n in a b c; do stop_pid "sf-compute-$n"; done
    stop_pid sf-api
    # Only the test driver ever held these domains: lib.sh need not ask qemu:///system.
    for n in a b c; do rm -rf "$STORAGE/$n"; done
    (exit "$rc"); e2e_cleanup
}
trap sched_cleanup EXIT

mkdir -m 0755 "$STORAGE"
REDIS_PORT=$(free_port); NATS_PORT=$(free_port); NATS_MON_PORT=$(free_port); API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
"$E2E_ROOT/tools/sf-creds" "$W/creds" > /dev/null || fail "tools/sf-creds failed"
REDISCLI_AUTH=$(cat "$W/creds/redis_password")
export REDISCLI_AUTH
start_redis
start_nats
wait_until 20 redis redis_up
wait_until 20 nats nats_up
unset SF_AUTH_SECRET_FILE SF_REDIS_PASSWORD SF_NATS_PASSWORD
export SF_NODE=$NODE SF_REDIS_HOST=127.0.0.1 SF_REDIS_PORT=$REDIS_PORT \
    SF_NATS_URL=nats://127.0.0.1:$NATS_PORT SF_API_BIND=127.0.0.1 SF_API_PORT=$API_PORT \
    SF_DOMAIN_TYPE=qemu SF_LIBVIRT_URI=test:///default \
    SF_TEMPLATES=$E2E_ROOT/templates SF_MESH_DEV=lo SF_MESH_IP=127.0.0.1 \
    SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
    SF_NATS_PASSWORD_FILE=$W/creds/nats_password \
    SF_NODE_CHECKIN_MAXIMUM=8 SF_USAGE_EVENT_FREQUENCY=2 SF_SCHEDULER_CACHE_TIMEOUT=1
SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export SF_AUTH_SECRET
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
SF_STORAGE=$STORAGE "$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 ||
    fail "sf-ctl bootstrap failed"

start_compute() {   # a | b | c
    mkdir -p "$STORAGE/$1"
    spawn "sf-compute-$1" env SF_NODE="$NODE-$1" SF_STORAGE="$STORAGE/$1" "$BUILD/sf-compute"
}
for n in a b c; do start_compute "$n"; done
spawn sf-api env SF_STORAGE="$STORAGE" "$BUILD/sf-api"
wait_until 30 sf-api api_up
TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
        json_get access_token) || fail "POST /auth gave no access_token"
export HOME=$W/home SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY
mkdir -p "$HOME"

node_state() { api GET "/nodes/$1"; echo "$RESP" | json_get state; }
nodes_created() {
    local n
    for n in "${NODES[@]}"; do [ "$(node_state "$n")" = created ] || return 1; done
}
wait_until 30 "three nodes created" nodes_created
"$SF" --simple node list > "$W/nodes.txt" || fail "sf node list failed"
for n in "${NODES[@]}"; do
    grep -E "^$n,.*created" "$W/nodes.txt" > /dev/null || fail "sf node list: no created $n: $(cat "$W/nodes.txt")"
done
log "three nodes up: ${NODES[*]}"

# create NAME [EXTRA-JSON-FIELDS]: POST /instances (1 vCPU, 64 MiB, a blank 1 GiB disk);
# sets UUID and PLACED (the node); fails unless 200.
create() {
    api_ok POST /instances "{\"name\": \"$1\", \"cpus\": 1, \"memory\": 64, \"disk\": [{\"size\": 1}]${2:+, $2}}"
    UUID=$(echo "$RESP" | json_get uuid)
    PLACED=$(echo "$RESP" | json_get node)
    INSTANCES+=("$UUID")
}

# ---- affinity +100 co-locates -------------------------------------------------------------
create web0 "\"placed_on\": \"$NODE-b\", \"metadata\": {\"tags\": [\"web\"]}"
[ "$PLACED" = "$NODE-b" ] || fail "placed_on $NODE-b went to $PLACED"
for i in 1 2 3 4; do
    create "web$i" '"metadata": {"affinity": {"web": 100}}'
    [ "$PLACED" = "$NODE-b" ] || fail "affinity web=+100: web$i went to $PLACED, not $NODE-b (web0's node)"
done
log "affinity +100: web1-4 all joined web0 on $NODE-b"

# ---- affinity -100 separates (one created with the CLI) -----------------------------------
declare -A DB_NODES=()
"$SF" --json instance create db0 1 1024 -d 1 -m 'tags=["db"]' -m 'affinity={"db": -100}' > "$W/db0.json" 2> "$W/db0.err" ||
    fail "sf instance create -m failed: $(cat "$W/db0.json" "$W/db0.err")"
db_node=$(json_get node < "$W/db0.json") || fail "sf instance create gave no node: $(cat "$W/db0.json")"
INSTANCES+=("$(json_get uuid < "$W/db0.json")")
DB_NODES[$db_node]=db0
for i in 1 2; do
    create "db$i" '"metadata": {"tags": ["db"], "affinity": {"db": -100}}'
    [ -z "${DB_NODES[$PLACED]:-}" ] ||
        fail "affinity db=-100: db$i went to $PLACED, which already has ${DB_NODES[$PLACED]}"
    DB_NODES[$PLACED]=db$i
done
[ "${#DB_NODES[@]}" = 3 ] || fail "db0-2 are not on three nodes: ${!DB_NODES[*]}"
log "affinity -100: db0, db1, db2 on three different nodes"

# ---- audit events per stage, 507 messages -------------------------------------------------
api_ok GET "/instances/$UUID/events" '{"event_type": "audit"}'
for m in "schedule initial candidates" "schedule are hypervisors" "schedule have reasonable queue state" \
         "schedule have enough actual cpu" "schedule have enough idle cpu" "schedule have enough idle ram" \
         "schedule have enough idle disk" "schedule have highest affinity" "schedule have lowest cpu load" \
         "schedule final candidates"; do
    echo "$RESP" | grep -F "\"$m\"" > /dev/null || fail "no audit event \"$m\": $RESP"
done
echo "$RESP" | python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["message"] == "schedule have highest affinity"]
assert ev and len(ev[0]["extra"]["candidates"]) == 1, ev' || fail "highest affinity stage: not one candidate"
api POST /instances '{"name": "big", "cpus": 64, "memory": 64, "disk": [{"size": 1}]}'
[ "$CODE" = 507 ] && echo "$RESP" | grep -F '"Requested vCPUs exceeds vCPU limit"' > /dev/null ||
    fail "64 vCPUs: $CODE $RESP"
api POST /instances '{"name": "big", "cpus": 1, "memory": 64, "disk": [{"size": 65536}]}'
[ "$CODE" = 507 ] && echo "$RESP" | grep -F '"No nodes with enough disk space"' > /dev/null ||
    fail "65536 GiB disk: $CODE $RESP"
log "507 messages and the audit stages as upstream"

# ---- usage events ----------------------------------------------------------------------------
usage_seen() {
    api GET "/instances/$UUID/events" '{"event_type": "usage"}'
    echo "$RESP" | grep -F '"cpu usage"' > /dev/null
}
wait_until 20 "a usage event on db2" usage_seen
echo "$RESP" | grep -F '"disk usage"' > /dev/null || fail "usage event without disk usage: $RESP"
api_ok GET "/nodes/$PLACED/events" '{"event_type": "resources"}'
echo "$RESP" | grep -F '"cpu_total_instance_vcpus"' > /dev/null || fail "no node resources event: $RESP"
log "usage and resources events"

# ---- a silent node goes missing, is not scheduled, and comes back -------------------------
stop_pid sf-compute-c
wait_until 30 "$NODE-c missing" bash -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN' $API/nodes/$NODE-c |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = missing ]"
# The view reads a stale node as missing at once; the record changes on the next check.
missing_event() {
    api GET "/nodes/$NODE-c/events" '{"event_type": "mutate"}'
    echo "$RESP" | grep -F '"value": "missing"' > /dev/null
}
wait_until 30 "a mutate event to missing" missing_event
"$SF" --simple node list | grep -E "^$NODE-c,.*missing" > /dev/null || fail "sf node list does not show $NODE-c missing"
for i in 1 2 3 4 5 6; do
    create "after$i"
    [ "$PLACED" != "$NODE-c" ] || fail "after$i was placed on the missing node"
done
api POST /instances "{\"name\": \"forced\", \"cpus\": 1, \"memory\": 64, \"disk\": [{\"size\": 1}], \"placed_on\": \"$NODE-c\"}"
[ "$CODE" = 404 ] || fail "placed_on a missing node: $CODE $RESP"
log "$NODE-c missing: state, event, not scheduled"
start_compute c
wait_until 30 "$NODE-c back" bash -c "[ \"\$(curl -s -H 'Authorization: Bearer $TOKEN' $API/nodes/$NODE-c |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = created ]"
api_ok GET "/nodes/$NODE-c/events" '{"event_type": "audit"}'
echo "$RESP" | grep -F '"node returned from being missing"' > /dev/null || fail "no return event: $RESP"
log "$NODE-c returned to created"
log "PASS"
