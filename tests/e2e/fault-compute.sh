#!/usr/bin/env bash
# Fault test (issue 8, crash safety): sf-compute is killed with SIGKILL at every crash
# point of an instance's create, failed create, delete and power operations
# (lib/crashpoint.h), twice in a row, and at random moments, then restarted; after each
# run the instance must be in its terminal state (for a power operation: created, with
# the power_state the operation leaves) and have left nothing behind.
#
# Why crash points and the test driver: libvirt's test:///default driver keeps its
# domains inside the sf-compute process, so it makes ~60 runs fast (no QEMU) but a kill
# loses its domains.  So phase 1 (tests/tools/fault_compute.py) checks what persists
# across a kill: Redis (state, IPAM addresses, MAC claims, locks, pending intents) and
# the instance directories.  Phase 2 covers domains on qemu:///system: a few crash runs
# with real (TCG) domains, the power operations again (where a kill keeps the domain),
# and the start-up reconcile, which must remove planted leaked
# domains and directories (no record, or a `deleted` one) at once — SF_RECONCILE_INTERVAL
# is an hour here — and keep those a live record owns.
source "$(dirname "$0")/lib.sh"

SF_DAEMONS=(sf-network sf-blob sf-api)   # sf-compute is started by the phases below
export SF_RECONCILE_INTERVAL=3600 SF_STUCK_AFTER=3600
e2e_setup
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID

compute_pids_cleanup() {   # sf-compute processes started by the driver, by PID
    local rc=$? p
    set +e
    for p in $(cat "$W/compute.pids" 2>/dev/null); do
        alive "$p" && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sf-compute ] && kill -9 "$p"
    done
    (exit "$rc"); e2e_cleanup
}
trap compute_pids_cleanup EXIT

# ---- phase 1: the test driver, every crash point ---------------------------------------
t=$SECONDS
API=$API TOKEN=$TOKEN BUILD=$BUILD STORAGE=$STORAGE NET=$NET IMAGE_URL=$IMAGE_URL W=$W \
    REDIS_PORT=$REDIS_PORT SF_LIBVIRT_URI=test:///default SF_DOMAIN_TYPE=qemu \
    python3 "$E2E_ROOT/tests/tools/fault_compute.py" || fail "phase 1 (test driver) failed"
log "phase 1: $((SECONDS - t)) s"

# ---- phase 2: qemu:///system, real domains -------------------------------------------
wait_until 120 libvirtd libvirt_up   # another test may be restarting it
t=$SECONDS
API=$API TOKEN=$TOKEN BUILD=$BUILD STORAGE=$STORAGE NET=$NET IMAGE_URL=$IMAGE_URL W=$W \
    REDIS_PORT=$REDIS_PORT SF_LIBVIRT_URI=qemu:///system FAULT_SCENARIOS=${FAULT_SCENARIOS_QEMU:-libvirt,power} FAULT_MIN_RUNS=1 \
    python3 "$E2E_ROOT/tests/tools/fault_compute.py" || fail "phase 2 (qemu:///system crash runs) failed"
log "phase 2 crash runs: $((SECONDS - t)) s"

# Start-up reconcile: domains of this node and directories that no live record owns.
plant_domain() {   # uuid: a defined (not started) domain marked as this node's
    cat > "$W/plant.xml" <<EOF
<domain type='qemu'>
  <name>sf:$1</name>
  <uuid>$1</uuid>
  <metadata><sf:instance xmlns:sf="urn:sf:instance:1"><sf:node>$NODE</sf:node></sf:instance></metadata>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
</domain>
EOF
    "${VIRSH[@]}" define "$W/plant.xml" > /dev/null || fail "cannot define planted domain sf:$1"
    INSTANCES+=("$1")
    mkdir -p "$STORAGE/instances/$1"
    echo leak > "$STORAGE/instances/$1/disk0.qcow2"
}
new_uuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
# A record that is `deleted`, with a domain and files left behind (as by an sf-compute
# that was away while a node delete and a user's delete happened).
export SF_LIBVIRT_URI=qemu:///system
start_daemon sf-compute
create_instance "e2e-gone-$E2E_ID" "$NET"; GONE=$INST_UUID
wait_state instances "$GONE" 90 created
api_ok DELETE "/instances/$GONE"
wait_state instances "$GONE" 60 deleted
stop_pid sf-compute
plant_domain "$GONE"
ORPHAN=$(new_uuid)             # no record at all
plant_domain "$ORPHAN"
ORPHAN_DIR=$(new_uuid)         # a directory only
mkdir -p "$STORAGE/instances/$ORPHAN_DIR"
# A live record: its domain and files stay.  Its intents are lost too (as when a create
# intent was finished but the instance not moved on): the start-up pass must drive it on
# at once, not after SF_STUCK_AFTER (an hour here).
create_instance "e2e-live-$E2E_ID" "$NET"; LIVE=$INST_UUID
plant_domain "$LIVE"
rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"; }
for id in $(rcli ZRANGE sf:intents:pending 0 -1); do
    [ "$(rcli HGET "sf:intent:$id" object)" = "instance/$LIVE" ] || continue
    log "dropping intent $id ($(rcli HGET "sf:intent:$id" kind)) of instance $LIVE"
    rcli ZREM sf:intents:pending "$id" > /dev/null
    rcli DEL "sf:intent:$id" > /dev/null
done
for k in $(rcli --scan --pattern "sf:intent:open:*:$LIVE:*"); do rcli DEL "$k" > /dev/null; done
mkdir -p "$STORAGE/image_cache"
echo half > "$STORAGE/image_cache/0123.qcow2.partial"

start_daemon sf-compute
t=$SECONDS
gone_all() {
    ! domain_exists "$ORPHAN" && ! domain_exists "$GONE" && [ ! -e "$STORAGE/instances/$ORPHAN" ] &&
        [ ! -e "$STORAGE/instances/$ORPHAN_DIR" ] && [ ! -e "$STORAGE/instances/$GONE" ] &&
        [ ! -e "$STORAGE/image_cache/0123.qcow2.partial" ]
}
wait_until 20 "the start-up reconcile to remove the planted leaks" gone_all
log "start-up reconcile removed 2 leaked domains, 3 leaked directories and a half-written image in $((SECONDS - t)) s"
# The live instance keeps its domain and files, and is built (its intent was pending).
[ -e "$STORAGE/instances/$LIVE/disk0.qcow2" ] || fail "the start-up reconcile removed the live instance's files"
! grep -q "removing leaked domain sf:$LIVE" "$W/sf-compute.log" ||
    fail "the start-up reconcile removed the live instance's domain"
wait_state instances "$LIVE" 90 created
domain_exists "$LIVE" || fail "the live instance's domain sf:$LIVE is missing"
api_ok DELETE "/instances/$LIVE"
wait_state instances "$LIVE" 60 deleted
assert_instance_gone "$LIVE"
stop_pid sf-compute

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
