#!/usr/bin/env bash
# Fault test: Redis stalls (SIGSTOP) for longer than a reconcile interval while two VMs
# run, and sf-compute is killed -9 and restarted meanwhile.  The restarted reconciler
# reads "don't know" (timeouts), not "absent", so it must leave every domain alone:
# after SIGCONT both VMs still run and are `created`.  (The old reconciler destroyed a
# domain whenever its record could not be read.)
source "$(dirname "$0")/lib.sh"

export SF_RECONCILE_INTERVAL=2
e2e_setup
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID
create_instance "e2e-stall1-$E2E_ID" "$NET"; VM1=$INST_UUID
create_instance "e2e-stall2-$E2E_ID" "$NET"; VM2=$INST_UUID
wait_state instances "$VM1" 120 created
wait_state instances "$VM2" 120 created
log "both instances created"

domstate() { "${VIRSH[@]}" domstate "sf:$1" 2>/dev/null | head -1 || true; }
marker='leaving every domain alone|removing leaked domain'
before=$(grep -cE "$marker" "$W/sf-compute.log" || true)

kill -STOP "${PIDS[redis]}"
REDIS_STOPPED=1
stall_cleanup() {   # never leave redis-server stopped; keep the exit status for e2e_cleanup
    local rc=$?
    set +e
    [ -n "${REDIS_STOPPED:-}" ] && kill -CONT "${PIDS[redis]}" 2>/dev/null
    (exit "$rc"); e2e_cleanup
}
trap stall_cleanup EXIT
log "redis-server stopped (SIGSTOP)"
kill -9 "${PIDS[sf-compute]}"
wait "${PIDS[sf-compute]}" 2>/dev/null || true
start_daemon sf-compute
log "sf-compute killed -9 and restarted (pid ${PIDS[sf-compute]})"

# The restarted reconciler reaches its domain pass while Redis is still stopped (each
# read times out after ~20 s); wait for its verdict, then one more interval.
t=$SECONDS
wait_until 150 "a reconciler pass during the outage" \
    bash -c '[ "$(grep -cE "$1" "$2" || true)" -gt "$3" ]' _ "$marker" "$W/sf-compute.log" "$before"
log "reconciler ran during the outage ($((SECONDS - t)) s after the restart): $(grep -E "$marker" "$W/sf-compute.log" | tail -1)"
sleep 3
kill -CONT "${PIDS[redis]}"
REDIS_STOPPED=""
log "redis-server continued (SIGCONT)"

# Redis answers again: a few reconciler passes with true answers must change nothing.
wait_until 30 redis redis_up
sleep $((SF_RECONCILE_INTERVAL * 3))
for vm in "$VM1" "$VM2"; do
    s=$(domstate "$vm")
    [ "$s" = running ] || fail "domain sf:$vm is '$s' after the outage (want running)"
    wait_state instances "$vm" 30 created
done
log "both domains still running and both instances created"
alive "${PIDS[sf-compute]}" || fail "the restarted sf-compute exited"

for vm in "$VM1" "$VM2"; do api_ok DELETE "/instances/$vm"; done
for vm in "$VM1" "$VM2"; do
    wait_state instances "$vm" 60 deleted
    assert_instance_gone "$vm"
done
api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
