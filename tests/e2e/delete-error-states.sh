#!/usr/bin/env bash
# No state without an exit: an instance in each of initial-error, preflight-error,
# creating-error, error and delete-wait-error (forced by writing the state into its
# Redis record, as a failure would leave it: domain, files and addresses still held)
# can be deleted and ends `deleted` with nothing left: no domain, no instance
# directory, its interface deleted and its address and MAC released.  delete-wait-error
# is a delete that failed half-way: deleting again goes error -> delete-wait -> deleted.
# (The old handler refused delete-wait-error -> delete-wait and left it stuck.)
source "$(dirname "$0")/lib.sh"

e2e_setup
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

force_state() {   # uuid state: rewrite the record the way a failure handler would
    local doc rev
    doc=$(rcli HGET "sf:obj:instance:$1" doc)
    rev=$(rcli HGET "sf:obj:instance:$1" rev)
    doc=$(python3 -c '
import json, sys, time
d = json.loads(sys.argv[1]); d["state"] = sys.argv[2]; d["state_updated"] = time.time()
d["error_message"] = "forced by the test"
print(json.dumps(d))' "$doc" "$2")
    rcli HSET "sf:obj:instance:$1" doc "$doc" rev $((rev + 1)) > /dev/null
}

STATES=(delete-wait-error initial-error preflight-error creating-error error)
declare -A VMS=() IFACES=() MACS=()
for st in "${STATES[@]}"; do
    create_instance "e2e-del-$st-$E2E_ID" "$NET"; VMS[$st]=$INST_UUID
done
for st in "${STATES[@]}"; do
    VM=${VMS[$st]}
    wait_state instances "$VM" 180 created
    IFACES[$st]=$(rcli HGET "sf:obj:instance:$VM" doc | json_get interfaces.0) || fail "no interface on $VM"
    MACS[$st]=$(rcli HGET "sf:obj:networkinterface:${IFACES[$st]}" doc | json_get macaddr) ||
        fail "no mac on ${IFACES[$st]}"
    force_state "$VM" "$st"
    api_ok GET "/instances/$VM"
    [ "$(json_get state <<< "$RESP")" = "$st" ] || fail "could not force $VM into $st: $RESP"
    wait_until 30 "the domain of $VM ($st)" domain_exists "$VM"   # virsh may be reconnecting
done
for st in "${STATES[@]}"; do api_ok DELETE "/instances/${VMS[$st]}"; done
deleted() { api GET "/instances/$1"; [ "$(json_get state <<< "$RESP" || true)" = deleted ]; }
for st in "${STATES[@]}"; do
    VM=${VMS[$st]} iface=${IFACES[$st]}
    # not wait_state: delete-wait-error passes through `error` on its way out
    wait_until 90 "instance $VM ($st) to be deleted" deleted "$VM"
    assert_instance_gone "$VM"
    s=$(rcli HGET "sf:obj:networkinterface:$iface" doc | json_get state)
    [ "$s" = deleted ] || fail "interface $iface of $VM is '$s' after the delete (want deleted)"
    [ "$(rcli HEXISTS "sf:ipamowners:$NET" "$iface")" = 0 ] || fail "address of $iface still reserved"
    [ -z "$(rcli GET "sf:mac:${MACS[$st]}")" ] || fail "MAC ${MACS[$st]} of $iface still claimed"
    log "deleted from $st: nothing left (domain, files, address, MAC)"
done

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
