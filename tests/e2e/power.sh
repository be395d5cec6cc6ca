#!/usr/bin/env bash
# End-to-end: power operations and consoles on a real TCG guest (api.md §2.3).
#  - every power operation answers `null` and power_state is already right when the
#    instance is read right after (and libvirt agrees); each is an audit event naming the
#    operation and a "set attribute" power_state event;
#  - 404 unknown, 406 while not created, 409 for reboot/pause/unpause of a powered-off one;
#  - poweron of an instance whose domain libvirt lost defines it again;
#  - changes made outside sf are seen through libvirt lifecycle events: virsh suspend /
#    resume, and a guest that powers itself off (user_data `sftest-poweroff`) goes `off`
#    with its event on GET .../events;
#  - consoledata length semantics (N, default, -1, 0, a bad length), DELETE then a short log;
#  - vdiconsolehelper answers (or refuses with a 406) without a 5xx; screenshot stores
#    an image as a blob with its size and sha512, served by GET /blobs/<uuid>/data and
#    written by `sf instance screenshot`;
#  - the same through `sf` (reboot, poweroff, poweron, pause, unpause, consoledelete).
source "$(dirname "$0")/lib.sh"

SF=$BUILD/sf
e2e_setup

power_state() { api_ok GET "/instances/$1"; json_get power_state <<< "$RESP"; }
domstate() { "${VIRSH[@]}" domstate "sf:$1" 2>/dev/null | head -1; }
# expect_power UUID POWER VIRSH_STATE WHAT: right after the operation, no waiting.
expect_power() {
    local p d
    p=$(power_state "$1")
    [ "$p" = "$2" ] || fail "$4: power_state is '$p' right after it (want $2)"
    d=$(domstate "$1")
    [ "$d" = "$3" ] || fail "$4: libvirt says '$d' (want $3)"
}
# wait_power UUID POWER TIMEOUT WHAT: for changes made outside sf.
wait_power() {
    local start=$SECONDS p
    while :; do
        p=$(power_state "$1")
        [ "$p" = "$2" ] && return 0
        [ $((SECONDS - start)) -lt "$3" ] || fail "$4: power_state still '$p' after $3 s (want $2)"
        sleep 0.2
    done
}
# has_event UUID TYPE MESSAGE [POWER]: an event of TYPE with MESSAGE (and, for a
# "set attribute", power_state = POWER) is on the instance's events.
has_event() {
    api_ok GET "/instances/$1/events" '{"limit": 1000}'
    python3 -c '
import json, sys
evs = json.loads(sys.stdin.read())
typ, msg, power = sys.argv[1], sys.argv[2], sys.argv[3]
for e in evs:
    if e.get("type") != typ or e.get("message") != msg:
        continue
    x = e.get("extra") or {}
    if isinstance(x, str):
        x = json.loads(x)
    if power and not (x.get("attribute", "power_state") == "power_state" and
                      (x.get("value") == power or x.get("power_state") == power)):
        continue
    sys.exit(0)
sys.exit(1)' "$2" "$3" "${4:-}" <<< "$RESP"
}
# op UUID OPERATION [WANT_CODE]: POST /instances/UUID/OPERATION.
op() {
    api POST "/instances/$1/$2"
    [ "$CODE" = "${3:-200}" ] || fail "POST $2 returned $CODE (want ${3:-200}): $RESP"
    if [ "${3:-200}" = 200 ]; then [ "$(tr -d ' \n' <<< "$RESP")" = null ] || fail "POST $2 answered '$RESP' (want null)"; fi
}

create_network "e2e-pwr-$E2E_ID"
NET=$NET_UUID

# ---- 404 and 406 ----
op 8a6e2f62-6a3c-4bd4-9f1e-0d1f0c6b2a77 poweroff 404
[ "$(json_get error <<< "$RESP")" = "instance not found" ] || fail "404 message: $RESP"
create_instance "e2e-pwr-$E2E_ID" "$NET"
VM=$INST_UUID
# 406 while not created: an instance whose image does not exist ends in `error`.
api_ok POST /instances "{\"name\": \"e2e-bad-$E2E_ID\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$IMAGE_URL/nosuch.qcow2\", \"size\": 1}]}"
BAD=$(json_get uuid <<< "$RESP")
INSTANCES+=("$BAD")
op "$BAD" poweroff 406
[[ "$(json_get error <<< "$RESP")" =~ ^"instance $BAD is not ready ("(initial|preflight|creating|creating-error|error)")"$ ]] ||
    fail "406 message: $RESP"
wait_state instances "$BAD" 60 error
for o in poweron poweroff rebootsoft reboothard pause unpause; do
    op "$BAD" "$o" 406
    [ "$(json_get error <<< "$RESP")" = "instance $BAD is not ready (error)" ] || fail "406 message for $o: $RESP"
done
api DELETE "/instances/$BAD/consoledata"
[ "$CODE" = 406 ] || fail "DELETE consoledata of an instance in error returned $CODE: $RESP"
log "406 while not created ok"
# The guest that powers itself off boots meanwhile (TCG under load takes its time).
UD=$(printf 'sftest-poweroff\n' | base64 -w0)
api_ok POST /instances "{\"name\": \"e2e-off-$E2E_ID\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$IMAGE_URL/sftest.qcow2\", \"size\": 1}], \"network\": [{\"network_uuid\": \"$NET\"}], \"user_data\": \"$UD\"}"
VM2=$(json_get uuid <<< "$RESP")
INSTANCES+=("$VM2")
wait_state instances "$VM" 120 created
[ "$(power_state "$VM")" = on ] || fail "a created instance is not power_state on"

# ---- consoledata length semantics (once the guest has written some) ----
start=$SECONDS
until [ "$(stat -c %s "$STORAGE/instances/$VM/console.log" 2>/dev/null || echo 0)" -gt 1000 ]; do
    [ $((SECONDS - start)) -lt 240 ] || fail "the guest wrote under 1000 bytes to its console in 240 s"
    sleep 1
done
LOGF=$STORAGE/instances/$VM/console.log
size=$(stat -c %s "$LOGF")
api_ok GET "/instances/$VM/consoledata" '{"length": -1}'
[ "${#RESP}" -ge $((size - 2)) ] || fail "length -1 gave ${#RESP} bytes of a $size byte log"
# The guest is still booting, so the log may grow between the request and
# the check: the answer must be the 100 bytes ending somewhere between the
# size before the request and the size after it.
s1=$(stat -c %s "$LOGF")
api_ok GET "/instances/$VM/consoledata" '{"length": 100}'
s2=$(stat -c %s "$LOGF")
n=$(printf '%s' "$RESP" | wc -c)
[ "$n" = 100 ] || fail "length 100 gave $n bytes"
printf '%s' "$RESP" | python3 -c '
import sys
log = open(sys.argv[1], "rb").read()
got = sys.stdin.buffer.read()[:60]
lo, hi = int(sys.argv[2]), int(sys.argv[3])
sys.exit(0 if any(log[end - 100:end - 40] == got for end in range(max(lo, 100), hi + 1)) else 1)
' "$LOGF" "$s1" "$s2" || fail "length 100 is not the log's last 100 bytes (log $s1..$s2 bytes)"
api_ok GET "/instances/$VM/consoledata"
n=$(printf '%s' "$RESP" | wc -c)
want=$((size < 10240 ? size : 10240))
[ "$n" -ge $((want - 2)) ] && [ "$n" -le 10240 ] || fail "default length gave $n bytes (log $size)"
api_ok GET "/instances/$VM/consoledata" '{"length": 0}'
[ -z "$RESP" ] || fail "length 0 gave '${RESP:0:40}...'"
api GET "/instances/$VM/consoledata" '{"length": "lots"}'
[ "$CODE" = 400 ] && [ "$(json_get error <<< "$RESP")" = "length is not an integer" ] ||
    fail "a bad length gave $CODE: $RESP"
log "consoledata: -1 = $size bytes, 100, default, 0 and a bad length ok"

# ---- every power operation, power_state right after the null ----
t=$(date +%s%N)
op "$VM" poweroff
log "poweroff answered in $((($(date +%s%N) - t) / 1000000)) ms"
expect_power "$VM" off "shut off" poweroff
for o in rebootsoft reboothard pause unpause; do
    op "$VM" "$o" 409
    case $o in reboot*) verb=reboot ;; *) verb=$o ;; esac
    [ "$(json_get error <<< "$RESP")" = "you cannot $verb a powered off instance" ] || fail "409 message: $RESP"
done
log "409 for reboot/pause/unpause of a powered-off instance ok"
t=$(date +%s%N)
op "$VM" poweron
log "poweron answered in $((($(date +%s%N) - t) / 1000000)) ms"
expect_power "$VM" on running poweron
op "$VM" pause
expect_power "$VM" paused paused pause
op "$VM" pause # again: idempotent
op "$VM" unpause
expect_power "$VM" on running unpause
op "$VM" reboothard
expect_power "$VM" on running reboothard
op "$VM" rebootsoft
expect_power "$VM" on running rebootsoft
for o in poweroff poweron pause unpause reboothard rebootsoft; do
    has_event "$VM" audit "$o" || fail "no audit event '$o'"
done
for p in off on paused; do
    has_event "$VM" mutate "set attribute" "$p" || fail "no 'set attribute' event for power_state $p"
done
log "power operations: states and events ok"

# A running domain that disappears outside sf (undefined, then destroyed) is `off`
# (before, power_state stayed `on` for a domain that no longer existed); poweron of an
# instance whose domain libvirt lost defines it again and starts it.
[ "$(power_state "$VM")" = on ] || fail "power_state is not on before the undefine"
"${VIRSH[@]}" undefine "sf:$VM" > /dev/null || fail "virsh undefine failed"
"${VIRSH[@]}" destroy "sf:$VM" > /dev/null || fail "virsh destroy failed"
domain_exists "$VM" && fail "domain still there after virsh undefine and destroy"
wait_power "$VM" off 10 "a domain gone outside sf"
op "$VM" poweron
expect_power "$VM" on running "poweron of a lost domain"
log "poweron redefines a lost domain ok"

# ---- changes outside sf: libvirt lifecycle events ----
t=$(date +%s%N)
"${VIRSH[@]}" suspend "sf:$VM" > /dev/null
wait_power "$VM" paused 10 "virsh suspend"
ms=$((($(date +%s%N) - t) / 1000000))
"${VIRSH[@]}" resume "sf:$VM" > /dev/null
wait_power "$VM" on 10 "virsh resume"
has_event "$VM" audit "power state changed outside sf" || fail "no audit event for a change outside sf"
log "virsh suspend/resume seen through lifecycle events (virsh suspend to power_state paused: $ms ms)"

# ---- consoles ----
api_ok DELETE "/instances/$VM/consoledata"
[ "$(tr -d ' \n' <<< "$RESP")" = null ] || fail "DELETE consoledata answered '$RESP'"
size=$(stat -c %s "$LOGF")
[ "$size" -lt 4096 ] || fail "console.log is $size bytes right after DELETE consoledata"
api_ok GET "/instances/$VM/consoledata" '{"length": -1}'
[ "${#RESP}" -lt 4096 ] || fail "consoledata after DELETE has ${#RESP} bytes"
log "DELETE consoledata ok (log now $size bytes)"
api GET "/instances/$VM/vdiconsolehelper"
case $CODE in
    200) grep -qx '\[virt-viewer\]' <<< "$RESP" && grep -q '^port=[0-9]' <<< "$RESP" &&
             grep -qx 'delete-this-file=1' <<< "$RESP" || fail "vdiconsolehelper: $RESP" ;;
    406) ;;
    *) fail "vdiconsolehelper returned $CODE: $RESP" ;;
esac
log "vdiconsolehelper: $CODE"
# screenshot: a new blob holding the guest's screen (PPM or PNG), whose record has the
# file's size and sha512, whose bytes GET /blobs/<uuid>/data serves (offset and limit
# too), and which `sf instance screenshot` writes to a file.
is_image() { python3 -c 'import sys; d = open(sys.argv[1], "rb").read(8)
sys.exit(0 if d[:2] == b"P6" or d == b"\x89PNG\r\n\x1a\n" else 1)' "$1"; }
api_ok GET "/instances/$VM/screenshot"
B=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.read()))' <<< "$RESP")
BF=$STORAGE/blobs/${B:0:2}/$B
[ -s "$BF" ] || fail "screenshot blob $B has no file"
is_image "$BF" || fail "screenshot blob $B is no PPM or PNG: $(head -c 16 "$BF" | od -c | head -2)"
curl -sf -o "$W/shot.rest" -H "Authorization: Bearer $TOKEN" "$API/blobs/$B/data" ||
    fail "GET /blobs/$B/data failed"
cmp -s "$W/shot.rest" "$BF" || fail "GET /blobs/$B/data differs from the blob's file"
curl -sf -o "$W/shot.part" -H "Authorization: Bearer $TOKEN" "$API/blobs/$B/data?offset=2&limit=5" ||
    fail "GET /blobs/$B/data?offset=2&limit=5 failed"
[ "$(od -An -tx1 < "$W/shot.part")" = "$(tail -c +3 "$BF" | head -c 5 | od -An -tx1)" ] ||
    fail "GET /blobs/$B/data?offset=2&limit=5 is not bytes 2..6 of the file"
api_ok GET "/blobs/$B"
[ "$(json_get size <<< "$RESP")" = "$(stat -c %s "$BF")" ] || fail "blob $B size is not the file's: $RESP"
[ "$(json_get sha512 <<< "$RESP")" = "$(sha512sum "$BF" | cut -d' ' -f1)" ] ||
    fail "blob $B sha512 is not the file's: $RESP"
[ "$(json_get state <<< "$RESP")" = created ] || fail "blob $B is not created: $RESP"
SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY \
    "$SF" --json instance screenshot "e2e-pwr-$E2E_ID" "$W/shot.cli" > "$W/sf.out" 2> "$W/sf.err" ||
    fail "sf instance screenshot: $(cat "$W/sf.err")"
[ ! -s "$W/sf.out" ] || fail "sf instance screenshot printed: $(cat "$W/sf.out")"
[ -s "$W/shot.cli" ] && is_image "$W/shot.cli" || fail "sf instance screenshot wrote no image"
log "screenshot: blob $B, $(stat -c %s "$BF") bytes of $(json_get mime-type <<< "$RESP"), sha512 recorded; sf instance screenshot ok"

# ---- the same through sf ----
export SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY
sfj() { "$SF" --json "$@" > "$W/sf.out" 2> "$W/sf.err" || fail "sf $*: $(cat "$W/sf.err")"
        [ "$(tr -d ' \n' < "$W/sf.out")" = "{}" ] || fail "sf --json $* printed: $(cat "$W/sf.out")"; }
sfj instance poweroff "e2e-pwr-$E2E_ID"
expect_power "$VM" off "shut off" "sf instance poweroff"
"$SF" instance reboot "e2e-pwr-$E2E_ID" > "$W/sf.out" 2> "$W/sf.err" && fail "sf instance reboot of an off instance succeeded"
grep -q "you cannot reboot a powered off instance" "$W/sf.err" "$W/sf.out" || fail "sf reboot of an off instance: $(cat "$W/sf.err")"
sfj instance poweron "e2e-pwr-$E2E_ID"
expect_power "$VM" on running "sf instance poweron"
sfj instance pause "e2e-pwr-$E2E_ID"
expect_power "$VM" paused paused "sf instance pause"
sfj instance unpause "e2e-pwr-$E2E_ID"
expect_power "$VM" on running "sf instance unpause"
sfj instance reboot --hard "e2e-pwr-$E2E_ID"
expect_power "$VM" on running "sf instance reboot --hard"
sfj instance reboot "e2e-pwr-$E2E_ID"
expect_power "$VM" on running "sf instance reboot"
n=$(api GET "/instances/$VM/events" '{"limit": 1000}'; python3 -c '
import json, sys; print(sum(1 for e in json.loads(sys.stdin.read()) if e.get("message") == "reboothard"))' <<< "$RESP")
[ "$n" -ge 2 ] || fail "sf instance reboot --hard did not reboot hard ($n reboothard events)"
# upstream's consoledelete prints nothing, even with --json
"$SF" --json instance consoledelete "e2e-pwr-$E2E_ID" > "$W/sf.out" 2> "$W/sf.err" || fail "sf instance consoledelete: $(cat "$W/sf.err")"
[ ! -s "$W/sf.out" ] || fail "sf instance consoledelete printed: $(cat "$W/sf.out")"
[ "$(stat -c %s "$LOGF")" -lt 4096 ] || fail "sf instance consoledelete left $(stat -c %s "$LOGF") bytes"
log "sf instance reboot/poweroff/poweron/pause/unpause/consoledelete ok"

# ---- a guest that powers itself off ----
wait_state instances "$VM2" 120 created
wait_power "$VM2" off 300 "a guest that powers itself off"
[ "$(domstate "$VM2")" = "shut off" ] || fail "libvirt says $(domstate "$VM2") for the powered-off guest"
has_event "$VM2" mutate "set attribute" off || fail "no 'set attribute' power_state off event for the guest's poweroff"
has_event "$VM2" audit "power state changed outside sf" || fail "no audit event for the guest's poweroff"
log "a guest that powered itself off is 'off', with its events"

for u in "$VM" "$VM2"; do
    api_ok DELETE "/instances/$u"
    wait_state instances "$u" 60 deleted
    assert_instance_gone "$u"
done
api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
