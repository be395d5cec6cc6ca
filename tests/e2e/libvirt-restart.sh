#!/usr/bin/env bash
# Fault test: libvirtd is killed (by pid) and started again while sf-compute keeps
# running.  Without restarting sf-compute, an instance is deleted (its domain goes) and
# another is created: sf-compute notices the dead connection and reconnects.  (The old
# sf-compute kept its dead connection for ever: every create and delete failed.)  The
# power watcher follows libvirt's lifecycle events again: a virsh suspend/resume after the
# restart reaches power_state.
# libvirtd is shared with other tests on this machine: it is started again at once, the
# way lib.sh's ensure_libvirt starts it, and left running unless this test started it.
source "$(dirname "$0")/lib.sh"

e2e_setup
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID
create_instance "e2e-lvr1-$E2E_ID" "$NET"; VM1=$INST_UUID
wait_state instances "$VM1" 120 created
compute_pid=${PIDS[sf-compute]}

old=$(cat /run/libvirtd.pid 2>/dev/null || true)
alive "$old" || fail "libvirtd is not running (pid file says '$old')"
kill -9 "$old"
for _ in $(seq 100); do alive "$old" || break; sleep 0.05; done
alive "$old" && fail "libvirtd $old did not die"
if [ -n "${PIDS[libvirtd]:-}" ]; then
    # ensure_libvirt started it for this test: so is the new one, and cleanup stops it
    spawn libvirtd setsid env LIBVIRT_LOG_OUTPUTS=3:stderr libvirtd
else
    # it was running before this test: leave the new one running too
    setsid env LIBVIRT_LOG_OUTPUTS=3:stderr libvirtd >> "$W/libvirtd-restarted.log" 2>&1 < /dev/null &
    disown
fi
log "libvirtd $old killed -9 and started again"
wait_until 120 libvirtd libvirt_up
log "libvirtd answers again (pid $(cat /run/libvirtd.pid))"

api_ok DELETE "/instances/$VM1"
wait_state instances "$VM1" 90 deleted
assert_instance_gone "$VM1"
create_instance "e2e-lvr2-$E2E_ID" "$NET"; VM2=$INST_UUID
wait_state instances "$VM2" 120 created
domain_exists "$VM2" || fail "instance $VM2 is created but its domain is not defined"
[ "${PIDS[sf-compute]}" = "$compute_pid" ] && alive "$compute_pid" || fail "sf-compute was restarted or died"
grep -q 'libvirt: connection lost' "$W/sf-compute.log" || fail "sf-compute did not log the reconnect"
log "same sf-compute (pid $compute_pid) deleted $VM1 and created $VM2 after the libvirtd restart"

# The power watcher registered for lifecycle events again: a change made outside sf
# after the restart still reaches power_state (workers/compute/power.c).
power_is() {   # uuid power timeout
    local start=$SECONDS p
    while :; do
        api_ok GET "/instances/$1"
        p=$(json_get power_state <<< "$RESP")
        [ "$p" = "$2" ] && return 0
        [ $((SECONDS - start)) -lt "$3" ] || fail "power_state of $1 is '$p' $3 s after virsh (want $2)"
        sleep 0.2
    done
}
"${VIRSH[@]}" suspend "sf:$VM2" > /dev/null || fail "virsh suspend failed"
power_is "$VM2" paused 20
"${VIRSH[@]}" resume "sf:$VM2" > /dev/null || fail "virsh resume failed"
power_is "$VM2" on 20
log "lifecycle events followed again after the libvirtd restart"

api_ok DELETE "/instances/$VM2"
wait_state instances "$VM2" 60 deleted
assert_instance_gone "$VM2"
api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
