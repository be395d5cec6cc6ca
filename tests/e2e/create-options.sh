#!/usr/bin/env bash
# End-to-end: every create option on real TCG guests (issue 8).
#  A (`sf instance create`): two disks plus a sata cdrom holding an ISO, two NICs (virtio, e1000), ssh key,
#     base64 user_data, vnc, two side channels.  Inside the guest: the block devices by
#     name, the cdrom's file, the key and user data from the config drive, a lease per NIC,
#     the virtio-serial port names; the interactive console answers on its telnet port and
#     what it echoes lands in consoledata.  The `disks` view lists every device.
#  B (REST): configdrive none (no drive in the guest), an nvme disk,
#     spice, one side channel.
#  C (`sf instance create --uefi`): OVMF loader + per-instance nvram (the test image boots
#     with syslinux, BIOS only: the domain is asserted, not the guest).
#  D (REST): an image larger than the requested size: creating-error, then error.
# Console/VDI ports are distinct across instances, listen on loopback only and are given
# back on delete.
source "$(dirname "$0")/lib.sh"

SF=${SF_CLI:-$BUILD/sf}
[ -x "$SF" ] || fail "$SF is missing (make all)"
# A second file server for the ISO and the oversized image; sf-blob may fetch from it.
EXTRA_PORT=$(free_port)
export SF_DOWNLOAD_ALLOW=127.0.0.1:$EXTRA_PORT
e2e_setup

mkdir -p "$W/extra/iso"
echo "sf-cdrom-$E2E_ID" > "$W/extra/iso/sftest.txt"
genisoimage -quiet -o "$W/extra/sftest.iso" -V SFCDROM -J -R "$W/extra/iso" || fail "genisoimage"
qemu-img create -q -f qcow2 "$W/extra/big.qcow2" 2G || fail "qemu-img create"
spawn extra python3 -m http.server --bind 127.0.0.1 "$EXTRA_PORT" --directory "$W/extra"
EXTRA_URL=http://127.0.0.1:$EXTRA_PORT
wait_until 20 "extra file server" curl -sf -o /dev/null "$EXTRA_URL/sftest.iso"

create_network "opt-net-$E2E_ID"
NET=$NET_UUID VX=$NET_VXID

SSHKEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpt$E2E_ID options@test"
UD_TEXT="sf-user-data-$E2E_ID"
UD=$(printf '%s' "$UD_TEXT" | base64)
sfcli() {
    SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY HOME=$W "$SF" "$@"
}

# ---- create A, B, C, D ---------------------------------------------------------------
sfcli --json --async continue instance create "opt-a-$E2E_ID" 1 256 \
    -D "base=$IMAGE_URL/sftest.qcow2,size=1" -D size=1 -D "base=$EXTRA_URL/sftest.iso,type=cdrom,bus=sata" \
    -N "network_uuid=$NET" -N "network_uuid=$NET,model=e1000" -I "$SSHKEY" -U "$UD" \
    -V model=vga,memory=16384,vdi=vnc -s sf-agent -s sfx > "$W/a.json" 2> "$W/a.err" ||
    fail "sf instance create A: $(cat "$W/a.err")"
A=$(json_get uuid < "$W/a.json"); INSTANCES+=("$A")
api_ok POST /instances "{\"name\": \"opt-d-$E2E_ID\", \"cpus\": 1, \"memory\": 128,
  \"disk\": [{\"base\": \"$EXTRA_URL/big.qcow2\", \"size\": 1}]}"
D=$(json_get uuid <<< "$RESP"); INSTANCES+=("$D")
api_ok POST /instances "{\"name\": \"opt-b-$E2E_ID\", \"cpus\": 1, \"memory\": 256,
  \"disk\": [{\"base\": \"$IMAGE_URL/sftest.qcow2\", \"size\": 1}, {\"size\": 1, \"bus\": \"nvme\"}],
  \"network\": [{\"network_uuid\": \"$NET\"}], \"configdrive\": \"none\",
  \"video\": {\"model\": \"cirrus\", \"memory\": 16384, \"vdi\": \"spice\"}, \"side_channels\": [\"sfc\"]}"
B=$(json_get uuid <<< "$RESP"); INSTANCES+=("$B")
sfcli --json instance create "opt-c-$E2E_ID" 1 256 -d "1@$IMAGE_URL/sftest.qcow2" --uefi \
    --configdrive none > "$W/c.json" 2> "$W/c.err" || fail "sf instance create C: $(cat "$W/c.err")"
C=$(json_get uuid < "$W/c.json"); INSTANCES+=("$C")
log "instances A $A, B $B, C $C, D $D requested"

wait_state instances "$A" 120 created
wait_state instances "$B" 120 created
wait_state instances "$C" 120 created

# ---- D: an image larger than the disk -------------------------------------------------
start=$SECONDS
while :; do
    api GET "/instances/$D"
    [ "$(json_get state <<< "$RESP")" = error ] && break
    [ $((SECONDS - start)) -lt 90 ] || fail "instance D never reached error: $RESP"
    sleep 1
done
json_get error_message <<< "$RESP" | grep -q ImagesCannotShrink ||
    fail "instance D's error_message does not name ImagesCannotShrink: $RESP"
api_ok GET "/instances/$D/events" '{"limit": 1000}'
grep -q '"creating-error"' <<< "$RESP" || fail "instance D has no creating-error state event: $RESP"
log "D: creating-error then error (ImagesCannotShrink)"

# ---- the disks view ---------------------------------------------------------------------
api_ok GET "/instances/$A"
python3 - "$RESP" <<'PY' || fail "instance A's disks view"
import json, sys
d = json.loads(sys.argv[1])['disks']
got = [(x['device'], x['bus'], x['snapshot_ignores']) for x in d]
want = [('vda', 'virtio', False), ('vdb', 'virtio', True), ('vdc', 'virtio', False), ('sdd', 'sata', True)]
assert got == want, got
assert set(d[0]) == {'device', 'bus', 'size', 'blob_uuid', 'snapshot_ignores'}, d[0]
assert d[0]['size'] == 1 and d[0]['blob_uuid'] and d[3]['blob_uuid'] and d[2]['blob_uuid'] is None, d
PY
api_ok GET "/instances/$B"
python3 - "$RESP" <<'PY' || fail "instance B's disks view"
import json, sys
d = json.loads(sys.argv[1])['disks']
got = [(x['device'], x['bus']) for x in d]
assert got == [('vda', 'virtio'), ('nvme1', 'nvme')], got
PY
log "disks views ok"

# ---- ports: distinct, loopback only, recorded ------------------------------------------
PORTS=()
for u in "$A" "$B" "$C"; do
    api_ok GET "/instances/$u"
    for f in console_port vdi_port; do
        p=$(json_get "$f" <<< "$RESP") || fail "instance $u has no $f: $RESP"
        PORTS+=("$p")
    done
    [ "$(json_get vdi_tls_port <<< "$RESP" || echo null)" = null ] || [ -e /etc/pki/libvirt-spice/server-cert.pem ] ||
        fail "a vdi_tls_port without spice TLS on this host: $RESP"
done
[ "$(printf '%s\n' "${PORTS[@]}" | sort -u | wc -l)" = 6 ] || fail "ports are not distinct: ${PORTS[*]}"
for p in "${PORTS[@]}"; do
    [ "$p" -ge 30000 ] && [ "$p" -lt 50000 ] || fail "port $p outside 30000-50000"
    l=$(ss -Hltn "sport = :$p" | awk '{print $4}')
    [ "$l" = "127.0.0.1:$p" ] || fail "port $p: listening as '$l', want only 127.0.0.1:$p"
    redis-cli -p "$REDIS_PORT" --no-auth-warning GET "sf:port:$NODE:$p" | grep -E '^[0-9a-f-]{36}$' > /dev/null ||
        fail "port $p is not reserved in Redis"
done
log "ports ${PORTS[*]}: distinct, loopback only, reserved"

# ---- host side: domain XML, sockets, nvram ---------------------------------------------
# (libvirtd is shared and another test restarts it: wait for it rather than fail)
vsh() {
    local i
    for i in $(seq 60); do
        "${VIRSH[@]}" "$@" 2> "$W/virsh.err" && return 0
        grep -q "failed to connect" "$W/virsh.err" || break
        sleep 0.5
    done
    cat "$W/virsh.err" >&2
    return 1
}
xa=$(vsh dumpxml "sf:$A")
grep -q "<graphics type='vnc'" <<< "$xa" || fail "A has no vnc graphics"
grep -q "<model type='vga' vram='16384'" <<< "$xa" || fail "A has no vga video"
grep -q "<model type='e1000'/>" <<< "$xa" || fail "A's second NIC is not e1000"
grep -q "<protocol type='telnet'/>" <<< "$xa" || fail "A's console is not telnet"
for s in sf-agent sfx; do
    [ -S "$STORAGE/instances/$A/sc-$s" ] || fail "no side channel socket sc-$s for A"
done
xb=$(vsh dumpxml "sf:$B")
grep -q "<graphics type='spice'" <<< "$xb" || fail "B has no spice graphics"
grep -q "nvme,drive=" <<< "$xb" || fail "B has no nvme device"
[ -S "$STORAGE/instances/$B/sc-sfc" ] && [ ! -e "$STORAGE/instances/$B/sc-sf-agent" ] ||
    fail "B's side channels are not exactly sfc"
[ ! -e "$STORAGE/instances/$B/config.iso" ] || fail "B has a config drive despite configdrive none"
xc=$(vsh dumpxml "sf:$C")
grep -q "<loader readonly='yes' secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>" <<< "$xc" ||
    fail "C has no OVMF loader: $xc"
grep -q "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>$STORAGE/instances/$C/nvram</nvram>" <<< "$xc" ||
    fail "C has no per-instance nvram"
[ -s "$STORAGE/instances/$C/nvram" ] || fail "C's nvram file was not made"
[ "$(vsh domstate "sf:$C")" = running ] || fail "C (UEFI) is not running"
log "domains: graphics, video, NIC models, telnet console, side channels, nvme, OVMF + nvram"

# ---- inside the guests -------------------------------------------------------------------
console_of() {   # uuid marker timeout -> RESP
    local start=$SECONDS
    while :; do
        api GET "/instances/$1/consoledata" '{"length": -1}'
        grep -q "$2" <<< "$RESP" && return 0
        if [ $((SECONDS - start)) -ge "$3" ]; then
            echo "$RESP" | tail -n 40
            ls -la "$STORAGE/instances/$1" || true
            vsh domstate "sf:$1" || true
            pgrep -af "guest=sf:$1" | tr ',' '\n' | grep -E 'chardev|logfile|socket' || true
            fail "no '$2' on $1's console"
        fi
        sleep 2
    done
}
console_of "$A" SFTEST-DONE 150
CA=$RESP
echo "$CA" > "$W/console-A.txt"
grep -q "^SFTEST-BLOCK .*\bvda\b" <<< "$CA" && grep -q "^SFTEST-BLOCK .*\bvdb\b" <<< "$CA" &&
    grep -q "^SFTEST-BLOCK .*\bvdc\b" <<< "$CA" && grep -q "^SFTEST-BLOCK .*\bsr0\b" <<< "$CA" ||
    fail "A's guest does not see vda vdb vdc sr0: $(grep SFTEST-BLOCK <<< "$CA")"
grep -q "^SFTEST-CDROM sr0 sf-cdrom-$E2E_ID" <<< "$CA" || fail "A's cdrom does not hold the ISO's file"
meta=$(sed -n '/SFTEST-META-BEGIN/,/SFTEST-META-END/p' <<< "$CA" | sed '1d;$d')
[ "$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["public_keys"]["mykey"])' <<< "$meta")" = "$SSHKEY" ] ||
    fail "A's meta_data public_keys.mykey is not the ssh key: $meta"
[ "$(sed -n '/SFTEST-USERDATA-BEGIN/,/SFTEST-USERDATA-END/p' <<< "$CA" | sed '1d;$d' | tr -d '\r\n')" = "$UD_TEXT" ] ||
    fail "A's user_data is not '$UD_TEXT'"
grep -q "^DHCP-LEASE eth0 ip=" <<< "$CA" && grep -q "^DHCP-LEASE eth1 ip=" <<< "$CA" ||
    fail "A has no lease on both eth0 and eth1"
grep -q "^SFTEST-CHANNELS sf-agent sfx" <<< "$CA" || grep -q "^SFTEST-CHANNELS sfx sf-agent" <<< "$CA" ||
    fail "A's guest does not see ports sf-agent and sfx: $(grep SFTEST-CHANNELS <<< "$CA")"
log "A's guest: vda vdb vdc sr0, cdrom file, ssh key, user data, eth0+eth1 leases, channels"

# The interactive console: a line typed on the telnet port runs in the guest's shell and,
# like everything on the serial port, lands in console.log.
api_ok GET "/instances/$A"
cport=$(json_get console_port <<< "$RESP")
python3 - "$cport" "$E2E_ID" <<'PY' || fail "telnet console of A"
import socket, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
time.sleep(1)
s.sendall(b'\r\necho SFTEST-TELNET-$((6*7))-' + sys.argv[2].encode() + b'\r\n')
time.sleep(3)
s.close()
PY
console_of "$A" "SFTEST-TELNET-42-$E2E_ID" 60
log "A's telnet console: typed command ran and was logged"

console_of "$B" SFTEST-DONE 150
CB=$RESP
echo "$CB" > "$W/console-B.txt"
grep -q "SFTEST: no config drive" <<< "$CB" || fail "B's guest found a config drive"
grep -q "^SFTEST-BLOCK .*\bnvme0n1\b" <<< "$CB" && grep -q "^SFTEST-BLOCK .*\bvda\b" <<< "$CB" ||
    fail "B's guest does not see vda and nvme0n1: $(grep SFTEST-BLOCK <<< "$CB")"
! grep -q "^SFTEST-BLOCK .*\bvdb\b" <<< "$CB" || fail "B's guest has a vdb"
# (spice adds its own port, com.redhat.spice.0)
ch=$(grep "^SFTEST-CHANNELS" <<< "$CB")
grep -qw sfc <<< "$ch" && ! grep -qw sf-agent <<< "$ch" || fail "B's guest ports: $ch"
log "B's guest: no config drive, vda + nvme0n1, channel sfc"

# ---- delete: ports given back, nothing left ----------------------------------------------
for u in "$A" "$B" "$C" "$D"; do api_ok DELETE "/instances/$u"; done
for u in "$A" "$B" "$C" "$D"; do wait_state instances "$u" 90 deleted; assert_instance_gone "$u"; done
left=$(redis-cli -p "$REDIS_PORT" --no-auth-warning --scan --pattern "sf:port:$NODE:*" | wc -l)
[ "$left" = 0 ] || fail "$left port reservations left after delete"
for p in "${PORTS[@]}"; do
    [ -z "$(ss -Hltn "sport = :$p")" ] || fail "port $p still listening after delete"
done
log "all deleted: no port reservations, nothing listening"

api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
log "PASS"
