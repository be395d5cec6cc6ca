#!/usr/bin/env bash
# End-to-end: a create waits for its network interface without polling.  sf-compute runs on
# libvirt's test driver (no VM).  With sf-network stopped, a create builds its disks and
# config drive anyway (only the domain needs the bridge) and then parks; when sf-network
# comes back and plugs the interface, its event wakes the create at once (well before
# the 5 s backstop delay of a parked create).
export SF_LIBVIRT_URI=test:///default
source "$(dirname "$0")/lib.sh"

e2e_setup
create_network "wake-net-$E2E_ID"

stop_pid sf-network
log "sf-network stopped"
api_ok POST /instances "{\"name\": \"wake-$E2E_ID\", \"cpus\": 1, \"memory\": 64, \"disk\": [{\"size\": 1}], \"network\": [{\"network_uuid\": \"$NET_UUID\"}]}"
VM=$(json_get uuid <<< "$RESP")
IFACE=$(json_get interfaces.0.uuid <<< "$RESP" 2>/dev/null || json_get interfaces.0 <<< "$RESP")
INSTANCES+=("$VM")

# 1. Disks and config drive are built while the interface is not plugged.
events() { api GET "/instances/$VM/events" '{"limit": 100}'; }
has_event() { events; grep -qF "\"$1\"" <<< "$RESP"; }
wait_until 20 "disks built before the interface is plugged" has_event "config drive written"
api_ok GET "/instances/$VM"
[ "$(json_get state <<< "$RESP")" = creating ] || fail "instance is $(json_get state <<< "$RESP"), want creating"
! has_event "domain defined and started" || fail "domain started before its interface was plugged"
log "disks and config drive built; waiting for the interface"

# 2. Parked, not polling: no build step runs again while nothing changes.
sleep 3
events
n=$(grep -o '"config drive written"' <<< "$RESP" | wc -l)
[ "$n" = 1 ] || fail "the create ran $n times while waiting (want 1: parked)"

# 3. sf-network plugs the interface; its event wakes the create.
start_daemon sf-network
wait_state instances "$VM" 30 created
api_ok GET "/interfaces/$IFACE/events" '{"limit": 100}'
t_if=$(python3 -c '
import json, sys
ev = [e for e in json.loads(sys.argv[1]) if e["type"] == "mutate" and (e.get("extra") or {}).get("value") == "created"]
print(min(e["timestamp"] for e in ev))' "$RESP") || fail "no interface created event: $RESP"
events
t_dom=$(python3 -c '
import json, sys
print(min(e["timestamp"] for e in json.loads(sys.argv[1]) if e["message"] == "domain defined and started"))' "$RESP")
lag=$(python3 -c "print(round($t_dom - $t_if, 3))")
log "interface created -> domain started: $lag s"
python3 -c "import sys; sys.exit(0 if $lag < 2.5 else 1)" ||
    fail "the create started $lag s after its interface was plugged (woken: well under the 5 s backstop)"

# 4. A lost wake-up never strands a create: sf-compute is killed while the create is
#    parked, the interface's event fires while nobody listens; the restarted sf-compute
#    finishes the create anyway (pending intents are re-published at start, and a parked
#    copy's nak delay is only 5 s).
stop_pid sf-network
api_ok POST /instances "{\"name\": \"wake2-$E2E_ID\", \"cpus\": 1, \"memory\": 64, \"disk\": [{\"size\": 1}], \"network\": [{\"network_uuid\": \"$NET_UUID\"}]}"
VM2=$(json_get uuid <<< "$RESP")
INSTANCES+=("$VM2")
VM=$VM2
wait_until 20 "second create parked" has_event "config drive written"
kill -KILL "${PIDS[sf-compute]}"
wait "${PIDS[sf-compute]}" 2>/dev/null || true
log "sf-compute killed with the create parked"
start_daemon sf-network
api_ok GET "/instances/$VM2"
IF2=$(json_get interfaces.0.uuid <<< "$RESP" 2>/dev/null || json_get interfaces.0 <<< "$RESP")
iface_created() { api GET "/interfaces/$IF2"; [ "$(json_get state <<< "$RESP")" = created ]; }
wait_until 30 "interface plugged while sf-compute is down" iface_created
start_daemon sf-compute
wait_state instances "$VM2" 30 created
log "the create finished after the lost wake-up"
