#!/usr/bin/env bash
# End-to-end: REST -> network -> instance boots the test image under TCG, gets the
# metadata from its config drive, the API-assigned address over DHCP and pings its
# router; then delete everything and check nothing leaked.  Plus two error envelopes.
source "$(dirname "$0")/lib.sh"

e2e_setup

# Error handling: a bad body is a 400 envelope, an unknown uuid a 404.
api POST /instances '{"name": "bad", "cpus": "x", "memory": 256, "disk": [{"size": 1}]}'
[ "$CODE" = 400 ] || fail "POST /instances with cpus=\"x\" returned $CODE (want 400): $RESP"
[ "$(json_get status <<< "$RESP")" = 400 ] || fail "400 body has no \"status\": 400: $RESP"
json_get error <<< "$RESP" > /dev/null || fail "400 body has no \"error\": $RESP"
api GET /instances/8a6e2f62-6a3c-4bd4-9f1e-0d1f0c6b2a77
[ "$CODE" = 404 ] || fail "GET of an unknown instance returned $CODE (want 404): $RESP"
log "error envelopes ok"

create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID ROUTER=$NET_ROUTER

t=$SECONDS
create_instance "e2e-vm-$E2E_ID" "$NET"
VM=$INST_UUID IP=$INST_IP
wait_state instances "$VM" 90 created
log "instance created in $((SECONDS - t)) s"
domain_exists "$VM" || fail "instance is created but domain sf:$VM is not defined"

# The guest's console: metadata with our uuid, the lease the API assigned, a router ping.
start=$SECONDS
while :; do
    api GET "/instances/$VM/consoledata" '{"length": -1}'
    [ "$CODE" = 200 ] || fail "consoledata returned $CODE: $RESP"
    meta=$(sed -n '/SFTEST-META-BEGIN/,/SFTEST-META-END/p' <<< "$RESP" | sed '1d;$d')
    if grep -q SFTEST-DONE <<< "$RESP" || [ $((SECONDS - start)) -ge 60 ]; then break; fi
    sleep 2
done
echo "---- console (tail)"; tail -n 25 <<< "$RESP"; echo "----"
[ -n "$meta" ] || fail "no SFTEST-META-BEGIN/END block on the console"
[ "$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["uuid"])' <<< "$meta" 2>/dev/null)" = "$VM" ] ||
    fail "meta_data.json on the console does not carry uuid $VM"
grep -qF "DHCP-LEASE eth0 ip=$IP router=" <<< "$RESP" || fail "no 'DHCP-LEASE eth0 ip=$IP' on the console"
grep -qF "SFTEST-PING $ROUTER ok" <<< "$RESP" || fail "no 'SFTEST-PING $ROUTER ok' on the console"
log "guest booted: metadata, lease $IP, ping $ROUTER ok ($((SECONDS - t)) s after create)"

api_ok GET "/instances/$VM/events"
n=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d) if isinstance(d, list) else -1)' <<< "$RESP")
[ "$n" -gt 0 ] || fail "GET /instances/$VM/events is not a non-empty list: $RESP"
log "$n events"

api_ok DELETE "/instances/$VM"
wait_state instances "$VM" 60 deleted
assert_instance_gone "$VM"

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
