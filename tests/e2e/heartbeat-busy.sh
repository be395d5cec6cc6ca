#!/usr/bin/env bash
# The node heartbeat never waits behind a handler: sf-compute runs with a qemu-img on
# its PATH that, once a flag file exists, stalls until the test releases it, so the
# create handler blocks inside an external command.  The image is served raw, so the
# create runs `qemu-img convert` (qcow2 overlays and blank disks are written in process).  Meanwhile `lastseen` on the node record keeps advancing.
# (The old heartbeat ran in the worker loop between intents: it froze for the whole
# handler, and a long image conversion made the node look dead to the scheduler.)
source "$(dirname "$0")/lib.sh"

mkdir -p "$W/bin"
cat > "$W/bin/qemu-img" <<EOS
#!/bin/sh
if [ -e "$W/stall" ]; then
    rm -f "$W/stall"
    touch "$W/stalling"
    i=0
    while [ ! -e "$W/release" ] && [ \$i -lt 300 ]; do sleep 1; i=\$((i + 1)); done
    rm -f "$W/stalling"
fi
exec $(command -v qemu-img) "\$@"
EOS
chmod 755 "$W/bin/qemu-img"
start_daemon() {   # sf-compute sees the stalling qemu-img first
    if [ "$1" = sf-compute ]; then spawn "$1" env PATH="$W/bin:$PATH" "$BUILD/$1"; else spawn "$1" "$BUILD/$1"; fi
}

RAW_PORT=$(free_port)
export SF_DOWNLOAD_ALLOW=127.0.0.1:$RAW_PORT
e2e_setup
mkdir -p "$W/raw"
qemu-img convert -f qcow2 -O raw "$BUILD/testimage/sftest.qcow2" "$W/raw/sftest.raw"
spawn raw-images python3 -m http.server --bind 127.0.0.1 "$RAW_PORT" --directory "$W/raw"
create_network "e2e-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID

lastseen() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" HGET "sf:obj:node:$NODE" doc | json_get lastseen
}
wait_until 30 "a first heartbeat" lastseen > /dev/null

touch "$W/stall"
api_ok POST /instances "{\"name\": \"e2e-hb-$E2E_ID\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"http://127.0.0.1:$RAW_PORT/sftest.raw\", \"size\": 1}], \"network\": [{\"network_uuid\": \"$NET\"}]}"
VM=$(json_get uuid <<< "$RESP") || fail "no uuid in $RESP"
wait_until 120 "the create handler to stall in qemu-img" test -e "$W/stalling"
t0=$(lastseen)
log "handler stalled in qemu-img; lastseen $t0"
sleep 20
test -e "$W/stalling" || fail "qemu-img stopped stalling early (its 300 s limit?)"
t1=$(lastseen)
log "20 s later, handler still blocked; lastseen $t1 (advanced $((t1 - t0)) s)"
touch "$W/release"
[ $((t1 - t0)) -ge 10 ] || fail "lastseen advanced $((t1 - t0)) s in 20 s while a handler was blocked (want >= 10)"

wait_state instances "$VM" 120 created
log "instance $VM created after the stall"
api_ok DELETE "/instances/$VM"
wait_state instances "$VM" 60 deleted
assert_instance_gone "$VM"
api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
