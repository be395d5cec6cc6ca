#!/usr/bin/env bash
# sf-compute stopping and losing its lock (issue 8, crash safety), on libvirt's test
# driver (no QEMU), with the crash point of lib/crashpoint.h in its freeze form
# (SF_CRASHPOINT=<point>:stop raises SIGSTOP there).
#
# 1. SIGTERM is graceful: an sf-compute frozen in the middle of a create gets SIGTERM,
#    then SIGCONT.  It finishes that create (`created`), takes nothing new (a second
#    instance queued meanwhile stays `initial`), and exits 0.  The next sf-compute builds
#    the second one and does not redo the first (one "domain defined and started").
# 2. A worker that lost its lock cannot act: sf-compute A is frozen mid-create past its
#    lock's TTL (SF_LOCK_TTL_MS=1500); B takes the lock over, builds the instance, and the
#    instance is deleted.  When A resumes it must neither write nor touch a file: the
#    deleted instance's directory stays gone and A logs that it lost the lock.
source "$(dirname "$0")/lib.sh"

SF_DAEMONS=(sf-network sf-blob sf-api)   # sf-compute processes are started below
export SF_RECONCILE_INTERVAL=3600 SF_STUCK_AFTER=3600 SF_LIBVIRT_URI=test:///default
e2e_setup
export SF_DOMAIN_TYPE=qemu
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID

compute() {   # name [ENV=VALUE...]: an sf-compute logging to $W/<name>.log
    local name=$1; shift
    spawn "$name" env "$@" "$BUILD/sf-compute"
    log "started $name (pid ${PIDS[$name]}) $*"
}
frozen() { grep -q '^State:.*T' "/proc/$1/status" 2>/dev/null; }
state_of() { api GET "/instances/$1"; json_get state <<< "$RESP" || true; }
events_named() {   # uuid message: how many events of the instance carry that message
    api_ok GET "/instances/$1/events" '{"limit": 1000}'
    python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin) if e.get("message") == sys.argv[1]))' \
        "$2" <<< "$RESP"
}

# ---- 1. SIGTERM during a create ----------------------------------------------------------
node_seen() { api GET "/nodes/$NODE"; [ "$CODE" = 200 ]; }
compute sf-compute-a SF_CRASHPOINT=create.disks:stop
A=${PIDS[sf-compute-a]}
wait_until 30 "the node's first heartbeat" node_seen
create_instance "e2e-term1-$E2E_ID" "$NET"; X=$INST_UUID
wait_until 60 "sf-compute A to freeze after the disks of $X" frozen "$A"
log "A is frozen mid-create of $X ($(state_of "$X"))"
create_instance "e2e-term2-$E2E_ID" "$NET"; Y=$INST_UUID
sleep 1
kill -TERM "$A"
kill -CONT "$A"
log "A got SIGTERM, then SIGCONT"
t=$SECONDS
while alive "$A"; do
    [ $((SECONDS - t)) -lt 60 ] || fail "A did not exit within 60 s of SIGTERM"
    sleep 0.1
done
rc=0; wait "$A" || rc=$?
[ "$rc" = 0 ] || fail "A exited $rc after SIGTERM (want 0)"
s=$(state_of "$X"); [ "$s" = created ] || fail "the create in hand did not finish before the exit: $X is '$s'"
s=$(state_of "$Y"); [ "$s" = initial ] || fail "A took new work after SIGTERM: $Y is '$s' (want initial)"
log "A finished $X (created), left $Y alone (initial) and exited 0"

compute sf-compute-b
wait_state instances "$Y" 60 created
n=$(events_named "$X" "domain defined and started")
[ "$n" = 1 ] || fail "$X was built $n times (want once: nothing redone after the graceful stop)"
log "B built $Y; $X was not built again"
for vm in "$X" "$Y"; do api_ok DELETE "/instances/$vm"; done
for vm in "$X" "$Y"; do
    wait_state instances "$vm" 60 deleted
    [ ! -e "$STORAGE/instances/$vm" ] || fail "$STORAGE/instances/$vm left after delete"
done
stop_pid sf-compute-b

# ---- 2. a lock lost while frozen ---------------------------------------------------------
export SF_LOCK_TTL_MS=1500
compute sf-compute-c SF_CRASHPOINT=create.creating:stop
C=${PIDS[sf-compute-c]}
create_instance "e2e-fence-$E2E_ID" "$NET"; Z=$INST_UUID
wait_until 60 "sf-compute C to freeze holding the lock of $Z" frozen "$C"
log "C is frozen holding the lock of $Z ($(state_of "$Z")); waiting out the lock's TTL"
compute sf-compute-d
wait_state instances "$Z" 60 created
log "D took the lock over and built $Z"
api_ok DELETE "/instances/$Z"
wait_state instances "$Z" 60 deleted
[ ! -e "$STORAGE/instances/$Z" ] || fail "$STORAGE/instances/$Z left after delete"
stop_pid sf-compute-d
before=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw HGET "sf:obj:instance:$Z" rev)
kill -CONT "$C"
log "C resumed"
# C's next step: either it checks its lock and stops, or (broken) it acts.
wait_until 20 "C to take its next step" bash -c \
    'grep -q "lock lost mid-create" "$1" || [ -e "$2" ]' _ "$W/sf-compute-c.log" "$STORAGE/instances/$Z"
sleep 2
[ ! -e "$STORAGE/instances/$Z" ] || fail "C acted after losing its lock: it re-created $STORAGE/instances/$Z"
! grep -q "sf:$Z started" "$W/sf-compute-c.log" || fail "C acted after losing its lock: it started domain sf:$Z"
grep -q "lock lost mid-create" "$W/sf-compute-c.log" || fail "C did not log the lost lock"
after=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw HGET "sf:obj:instance:$Z" rev)
[ "$before" = "$after" ] || fail "C wrote instance $Z after losing its lock (rev $before -> $after)"
s=$(state_of "$Z"); [ "$s" = deleted ] || fail "$Z is '$s' after C resumed (want deleted)"
alive "$C" || fail "C died"
stop_pid sf-compute-c
log "C stopped without acting: no file, no write"

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
