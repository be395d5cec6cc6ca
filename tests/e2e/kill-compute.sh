#!/usr/bin/env bash
# Crash test: kill -9 sf-compute while an instance is in preflight/creating, start it
# again with the same environment; JetStream redelivers after SF_ACK_WAIT (5 s here) and
# the idempotent handler converges: the instance ends `created` (or `error` with a
# message), and deleting it leaves nothing behind.  A second instance from the same URL
# then reaches `created` from the blob cache (no second full download).
source "$(dirname "$0")/lib.sh"

e2e_setup
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID

# Poll fast: the window between preflight and created is a second or two.  If a loaded
# machine hides the window, delete that instance and try again: the crash must be tested.
# A create takes milliseconds besides libvirt's start: when the window was missed, the
# next attempts hold it in `creating` by stopping sf-network first (the create builds its
# disks and config drive, then waits for the interface), and start it again after the kill.
caught=""
net_stopped=""
for attempt in 1 2 3; do
    if [ "$attempt" -gt 1 ] && [ -z "$net_stopped" ]; then
        stop_pid sf-network
        net_stopped=1
        log "sf-network stopped: the next create waits in creating"
    fi
    create_instance "e2e-crash$attempt-$E2E_ID" "$NET"
    VM1=$INST_UUID
    start=$SECONDS
    while :; do
        s=$(curl -s -X GET -H "Authorization: Bearer $TOKEN" -d '{}' "$API/instances/$VM1" |
            json_get state || true)
        case $s in
            preflight|creating) caught=1; break ;;
            initial|"") ;;
            *) break ;;
        esac
        [ $((SECONDS - start)) -lt 60 ] || fail "instance not in preflight/creating within 60 s (state '$s')"
        sleep 0.02
    done
    [ -n "$caught" ] && break
    log "attempt $attempt: instance reached '$s' before it was seen in preflight/creating; retrying"
    api_ok DELETE "/instances/$VM1"
    wait_state instances "$VM1" 60 deleted
    assert_instance_gone "$VM1"
done
[ -n "$caught" ] || fail "never caught an instance in preflight/creating: cannot test the crash"
kill -9 "${PIDS[sf-compute]}"
wait "${PIDS[sf-compute]}" 2>/dev/null || true
log "instance $VM1 in '$s': killed sf-compute (pid ${PIDS[sf-compute]}) with SIGKILL"
sleep 1
start_daemon sf-compute
log "restarted sf-compute (pid ${PIDS[sf-compute]})"
if [ -n "$net_stopped" ]; then
    start_daemon sf-network
    log "restarted sf-network (pid ${PIDS[sf-network]})"
fi

t=$SECONDS
wait_until 120 "instance $VM1 to settle" bash -c '
    s=$(curl -s -X GET -H "Authorization: Bearer $1" -d "{}" "$2/instances/$3" |
        python3 -c "import json,sys; print(json.load(sys.stdin).get(\"state\"))")
    [ "$s" = created ] || [ "$s" = error ]' _ "$TOKEN" "$API" "$VM1"
api_ok GET "/instances/$VM1"
state=$(json_get state <<< "$RESP")
if [ "$state" = error ]; then
    msg=$(json_get error_message <<< "$RESP" || true)
    [ -n "$msg" ] && [ "$msg" != null ] || fail "instance is in error without an error_message: $RESP"
    log "instance $VM1 ended in error (allowed): $msg"
else
    domain_exists "$VM1" || fail "instance is created but domain sf:$VM1 is not defined"
    log "instance $VM1 created $((SECONDS - t)) s after the restart"
fi
alive "${PIDS[sf-compute]}" || fail "the restarted sf-compute exited"

# A second instance from the same URL: served from the blob cache.
create_instance "e2e-cached-$E2E_ID" "$NET"
VM2=$INST_UUID
wait_state instances "$VM2" 90 created
log "second instance $VM2 created"
full=$(grep -c '"GET /sftest.qcow2 HTTP/1.[01]" 200' "$W/images.log" || true)
[ "$full" -eq 1 ] || fail "the image was downloaded in full $full times (want 1: the second create must use the blob cache)"
log "image downloaded once; the second create used the blob cache"

for vm in "$VM1" "$VM2"; do
    api_ok DELETE "/instances/$vm"
done
for vm in "$VM1" "$VM2"; do
    wait_state instances "$vm" 60 deleted
    assert_instance_gone "$vm"
done

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
