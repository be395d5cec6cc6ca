#!/usr/bin/env bash
# End-to-end: tenant images are untrusted bytes.  A host file with unique marker bytes
# sits outside the storage directory; an HTTP server offers images that would make
# qemu read it: (a) a VMDK descriptor whose extent is the host file, (b) a qcow2 whose
# backing file is the host file, (c) a qcow2 whose external data file is the host file.
# Each instance ends `error` with a message saying why, and the marker appears nowhere
# under the storage directory (image_cache included).  A raw image still creates.
source "$(dirname "$0")/lib.sh"

# The hostile image server is on loopback, which downloads may reach only when listed.
EVIL_PORT=$(free_port)
export SF_DOWNLOAD_ALLOW=127.0.0.1:$EVIL_PORT
e2e_setup

EVIL=$W/evil
mkdir -m 0755 "$EVIL"
SECRET=$W/host-secret
MARK=SFHOSTSECRET-$E2E_ID-$(python3 -c 'import secrets; print(secrets.token_hex(8))')
python3 - "$SECRET" "$MARK" <<'PY'
import sys
m = (sys.argv[2] + "\n").encode()
open(sys.argv[1], "wb").write((m * (1048576 // len(m) + 1))[:1048576])
PY

# (a) a monolithicFlat VMDK descriptor: the extent is any file qemu can open
cat > "$EVIL/extent.vmdk" <<VMDK
# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW 2048 FLAT "$SECRET" 0

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.adapterType = "ide"
VMDK
# (b) a qcow2 backed by the host file
qemu-img create -q -f qcow2 -F raw -b "$SECRET" "$EVIL/backing.qcow2"
# (c) a qcow2 whose data clusters live in the host file (create makes the data file
# empty, so it is written into place afterwards)
qemu-img create -q -f qcow2 -o "data_file=$W/datafile-secret,data_file_raw=on" "$EVIL/datafile.qcow2" 1M
cp "$SECRET" "$W/datafile-secret"
# and a valid raw image: the test image, transcoded
qemu-img convert -f qcow2 -O raw "$BUILD/testimage/sftest.qcow2" "$EVIL/sftest.raw"

EVIL_URL=http://127.0.0.1:$EVIL_PORT
spawn evil-images python3 -m http.server --bind 127.0.0.1 "$EVIL_PORT" --directory "$EVIL"
evil_up() { curl -sf -o /dev/null "$EVIL_URL/"; }
wait_until 20 "hostile image server" evil_up

create_from() {   # name url -> INST_UUID
    api_ok POST /instances "{\"name\": \"$1\", \"cpus\": 1, \"memory\": 128, \"disk\": [{\"base\": \"$2\", \"size\": 1}], \"configdrive\": \"none\"}"
    INST_UUID=$(json_get uuid <<< "$RESP") || fail "no uuid in $RESP"
    INSTANCES+=("$INST_UUID")
    log "instance $INST_UUID from $2 requested"
}

wait_error() {   # uuid timeout expected-message
    local uuid=$1 t=$2 want=$3 start=$SECONDS msg
    while :; do
        api GET "/instances/$uuid"
        STATE=$(json_get state <<< "$RESP" || true)
        [ "$STATE" = error ] && break
        case $STATE in created | deleted) fail "instance $uuid is $STATE (want error: $want)" ;; esac
        [ $((SECONDS - start)) -lt "$t" ] || fail "timeout (${t}s) waiting for instance $uuid to be error; it is '$STATE'"
        sleep 0.5
    done
    msg=$(json_get error_message <<< "$RESP" || true)
    grep -qF "$want" <<< "$msg" || fail "instance $uuid: error_message '$msg' does not say '$want'"
    ! domain_exists "$uuid" || fail "instance $uuid is error but domain sf:$uuid is defined"
    log "instance $uuid: error: $msg"
}

declare -A WANT=(
    [extent.vmdk]="image is vmdk: only raw and qcow2 images are supported"
    [backing.qcow2]="qcow2 image names a backing file: refused"
    [datafile.qcow2]="qcow2 image uses an external data file: refused"
)
declare -A UUID=()
for f in extent.vmdk backing.qcow2 datafile.qcow2; do
    create_from "e2e-evil-${f%%.*}-$E2E_ID" "$EVIL_URL/$f"
    UUID[$f]=$INST_UUID
done
create_from "e2e-raw-$E2E_ID" "$EVIL_URL/sftest.raw"
RAW=$INST_UUID

for f in extent.vmdk backing.qcow2 datafile.qcow2; do
    wait_error "${UUID[$f]}" 90 "${WANT[$f]}"
done
wait_state instances "$RAW" 120 created
log "raw image: instance $RAW created"
[ -f "$STORAGE/instances/$RAW/vda.qcow2" ] || fail "no vda.qcow2 for the raw-image instance"

# The host file's bytes are nowhere under the storage directory.
if hits=$(grep -r -a -l -F "$MARK" "$STORAGE" 2>/dev/null); then
    fail "host file marker found under $STORAGE: $hits"
fi
[ -d "$STORAGE/image_cache" ] && ls -la "$STORAGE/image_cache"
log "marker not found under $STORAGE"

for u in "${UUID[@]}" "$RAW"; do
    api_ok DELETE "/instances/$u"
done
for u in "${UUID[@]}" "$RAW"; do
    wait_state instances "$u" 60 deleted
    assert_instance_gone "$u"
done
