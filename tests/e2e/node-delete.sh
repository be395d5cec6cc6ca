#!/usr/bin/env bash
# DELETE /nodes/<node> of a node that is still running (docs/architecture.md "Node
# delete"): the node is `deleted` and stays so while sf-compute keeps heartbeating
# (lastseen advances, the state never comes back); its running instance goes to error
# with the reason; a new instance gets no placement (507); deleting the error instance
# finishes at once (no intent goes to a deleted node), and the node's own reconciler
# then removes the leftover domain and files.
source "$(dirname "$0")/lib.sh"

export SF_RECONCILE_INTERVAL=5
e2e_setup
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID
create_instance "e2e-nd-$E2E_ID" "$NET"; VM=$INST_UUID
wait_state instances "$VM" 180 created
wait_until 30 "the domain of $VM" domain_exists "$VM"

lastseen() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" HGET "sf:obj:node:$NODE" doc | json_get lastseen
}

api_ok DELETE "/nodes/$NODE"
[ "$(json_get state <<< "$RESP")" = deleted ] || fail "DELETE /nodes/$NODE answered $RESP"
log "node $NODE deleted"
api_ok GET "/instances/$VM"
[ "$(json_get state <<< "$RESP")" = error ] || fail "instance $VM is not in error: $RESP"
[ "$(json_get error_message <<< "$RESP")" = "node $NODE was deleted" ] || fail "no reason on $VM: $RESP"
domain_exists "$VM" || fail "the domain of $VM went before anybody deleted the instance"

t0=$(lastseen)
sleep 12
t1=$(lastseen)
[ "$t1" -gt "$t0" ] || fail "the heartbeat stopped ($t0 -> $t1): it should go on, the node stays deleted"
api_ok GET "/nodes/$NODE"
[ "$(json_get state <<< "$RESP")" = deleted ] || fail "the heartbeat revived $NODE: $RESP"
grep -q "is deleted: it gets no new instances" "$W/sf-compute.log" || fail "sf-compute did not log its deletion"
log "heartbeat went on ($t0 -> $t1), node still deleted"

api POST /instances "{\"name\": \"e2e-nd2-$E2E_ID\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$IMAGE_URL/sftest.qcow2\", \"size\": 1}]}"
[ "$CODE" = 507 ] || fail "an instance was placed on the deleted node ($CODE: $RESP)"

api_ok DELETE "/instances/$VM"
[ "$(json_get state <<< "$RESP")" = deleted ] || fail "the error instance was not deleted at once: $RESP"
no_domain() { ! domain_exists "$1"; }
wait_until 60 "the node's reconciler to remove the domain of $VM" no_domain "$VM"
wait_until 30 "the node's reconciler to remove the files of $VM" test ! -e "$STORAGE/instances/$VM"
assert_instance_gone "$VM"
log "instance $VM: deleted at once, domain and files reclaimed by the node"

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
log "ok"
