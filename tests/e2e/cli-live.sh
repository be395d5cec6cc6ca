#!/usr/bin/env bash
# End-to-end: the live side of the sf CLI on a whole node (a real TCG VM), at a terminal
# (tests/tools/pty_run.py: a pty, as a person would see it) and without one:
#   * `sf instance create` draws a progress line on the terminal while it waits (and
#     retries the 406 of a network still being created); without a terminal stderr
#     carries no escape codes, and stdout never does;
#   * `sf instance watch` shows a live status line that ends on `created` (exit 0), one line
#     per change without a terminal, and Ctrl-C ends it as interrupted (130) with the
#     cursor restored;
#   * `sf events follow` (--json, JSON Lines; --simple with --type) keeps following across a
#     restart of sf-api and a stopped reader: the ids it printed have no gap and no repeat,
#     and equal what the stream replays;
#   * first, against a fake API (tests/tools/cli_live_fake.py): 406 retries per --async
#     and a hostile event stream.
source "$(dirname "$0")/lib.sh"

SF=${SF_CLI:-$BUILD/sf}   # e.g. SF_CLI=$PWD/build-asan/sf
PTY=(python3 "$E2E_ROOT/tests/tools/pty_run.py" --timeout 240)
[ -x "$SF" ] || fail "$SF is missing (make all)"

python3 "$E2E_ROOT/tests/tools/cli_live_fake.py" "$SF" || fail "fake API checks"
log "fake API checks passed"

e2e_setup
export SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY HOME=$W/home
unset SHAKENFIST_ASYNC
mkdir -p "$HOME"

has_esc() { LC_ALL=C grep -q $'[\r\033]' "$1"; }

# ---- followers for the whole test (system sees every event) ----
# (--after 0: from the stream's first event, so a follower that starts slowly misses none)
"$SF" --json events follow --after 0 > "$W/follow.jsonl" 2> "$W/follow.err" &
PIDS[follow]=$!; STARTED+=(follow)
"$SF" --simple events follow --type network --after 0 > "$W/follow-net.csv" 2> "$W/follow-net.err" &
PIDS[follow-net]=$!; STARTED+=(follow-net)

# ---- create at a terminal: a progress line while waiting ----
n=$((RANDOM % 250 + 2))
api_ok POST /networks "{\"netblock\": \"10.251.$n.0/24\", \"name\": \"live\", \"provide_dhcp\": true, \"provide_nat\": true}"
NET_UUID=$(json_get uuid <<< "$RESP"); NET_VXID=$(json_get vxid <<< "$RESP")
NETWORKS+=("$NET_UUID $NET_VXID")
# The instance group (create, delete) comes with its own commit; without it, vm1 is made
# through the API and only the rest is checked here.
if "$SF" instance --help | grep '^  create ' > /dev/null; then
    log "network $NET_UUID requested; sf instance create on it at once, at a terminal"
    t0=$SECONDS
    "${PTY[@]}" --stdout "$W/create.out" "$W/create.pty" -- \
        "$SF" instance create vm1 1 256 -d "1@$IMAGE_URL/sftest.qcow2" -n "$NET_UUID" ||
        fail "sf instance create at a terminal: exit $? ($(cat "$W/create.out" "$W/create.pty"))"
    VM1=$(sed -n 's/^uuid *: //p' "$W/create.out"); INSTANCES+=("$VM1")
    grep -E '^state *: created' "$W/create.out" > /dev/null || fail "create did not end created: $(cat "$W/create.out")"
    has_esc "$W/create.out" && fail "escape codes on stdout: $(cat -A "$W/create.out")"
    python3 - "$W/create.pty" "$VM1" <<'PY' || fail "no progress line on the terminal: $(cat -A "$W/create.pty")"
import re, sys
t = open(sys.argv[1], 'rb').read().decode()
draws = re.findall(r'\r(%s: (initial|preflight|creating) \[[#-]{8,30}\] [0-3]/3 elapsed [0-9:]+ ETA [0-9:]+)\x1b\[K'
                    % sys.argv[2], t)
assert len(draws) >= 2, draws
assert t.endswith('\r\x1b[K'), repr(t[-40:])  # the line is cleared before sf exits
print('%d redraws, e.g. %r' % (len(draws), draws[-1][0]))
PY
    log "instance $VM1 created in $((SECONDS - t0)) s with a progress line on the terminal"
else
    log "sf instance create is not in this build: vm1 through the API, no progress check"
    wait_state networks "$NET_UUID" 60 created
    create_instance vm1 "$NET_UUID"
    VM1=$INST_UUID
    wait_state instances "$VM1" 120 created
fi

# ---- watch at a terminal, without one, and Ctrl-C ----
# sf-compute is held until the Ctrl-C watch has drawn its line: vm2 stays `initial` so
# far, and that watch cannot end on its own first.
kill -STOP "${PIDS[sf-compute]}"
api_ok POST /instances "{\"name\": \"vm2\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$IMAGE_URL/sftest.qcow2\", \"size\": 1}], \"network\": [{\"network_uuid\": \"$NET_UUID\"}]}"
VM2=$(json_get uuid <<< "$RESP"); INSTANCES+=("$VM2")
"${PTY[@]}" "$W/watch.pty" -- "$SF" instance watch vm2 & wpty=$!
"$SF" instance watch vm2 > "$W/watch.out" 2> "$W/watch.err" & wplain=$!
rc=0; "${PTY[@]}" --send-after 'power state' '\x03' "$W/watch-int.pty" -- "$SF" instance watch vm2 || rc=$?
kill -CONT "${PIDS[sf-compute]}"
[ "$rc" = 130 ] || fail "watch interrupted by Ctrl-C: exit $rc, want 130 ($(cat -A "$W/watch-int.pty"))"
wait "$wpty" || fail "watch at a terminal: exit $? ($(cat -A "$W/watch.pty"))"
wait "$wplain" || fail "watch without a terminal: exit $? ($(cat "$W/watch.out" "$W/watch.err"))"
has_esc "$W/watch.err" && fail "escape codes on stderr without a terminal: $(cat -A "$W/watch.err")"
python3 - "$W/watch.pty" "$W/watch.out" "$W/watch-int.pty" <<'PY' || fail "watch output"
import re, sys
t = open(sys.argv[1], 'rb').read().decode()
lines = re.findall(r'\r(vm2: state (\S+), power state (\S+), last event: (.*?) \([0-9:]+\))\x1b\[K', t)
assert lines and lines[-1][1] == 'created', lines
assert t.startswith('\x1b[?25l') and t.endswith('\x1b[K\r\n\x1b[?25h'), repr(t[-60:])
states = [l[1] for l in lines]
plain = open(sys.argv[2]).read()
assert '\x1b' not in plain and '\r' not in plain, repr(plain)
pl = plain.splitlines()
assert pl and pl[-1].startswith('vm2: state created,'), pl
assert len(pl) == len(set(l.rsplit(' (', 1)[0] for l in pl)), pl  # one line per change
i = open(sys.argv[3], 'rb').read().decode()
assert i.endswith('\n\x1b[?25h'), repr(i[-60:])  # Ctrl-C: the line kept, the cursor back
print('terminal: %d redraws through %s; plain: %d lines; Ctrl-C: 130, cursor restored'
      % (len(lines), ' -> '.join(dict.fromkeys(states)), len(pl)))
PY
log "sf instance watch ended on created"

# ---- sf-api restarts under the followers; a reader stopped for a while ----
api_ok DELETE "/instances/$VM2"
stop_pid sf-api
sleep 2   # sf-compute goes on deleting: its events reach JetStream while sf-api is down
start_daemon sf-api
wait_until 30 sf-api api_up
kill -STOP "${PIDS[follow]}"
if "$SF" instance --help | grep '^  delete ' > /dev/null; then
    "$SF" instance delete "$VM1" > "$W/delete.out" 2> "$W/delete.err" || fail "sf instance delete: $(cat "$W/delete.err")"
    delete_end=$(date +%s.%N)
    has_esc "$W/delete.err" && fail "escape codes on stderr without a terminal: $(cat -A "$W/delete.err")"
else
    api_ok DELETE "/instances/$VM1"
    wait_state instances "$VM1" 60 deleted
    delete_end=
fi
sleep 2
kill -CONT "${PIDS[follow]}"
wait_state instances "$VM2" 60 deleted
api_ok DELETE "/networks/$NET_UUID"
wait_state networks "$NET_UUID" 60 deleted
sleep 2
for f in follow follow-net; do
    kill -INT "${PIDS[$f]}"
    rc=0; wait "${PIDS[$f]}" || rc=$?
    [ "$rc" = 130 ] || fail "events follow ($f) after SIGINT: exit $rc, want 130 ($(cat "$W/$f.err"))"
done
grep 'reconnecting after event' "$W/follow.err" > /dev/null || fail "follow did not reconnect: $(cat "$W/follow.err")"
first=$(head -1 "$W/follow.jsonl" | json_get id) || fail "follow printed nothing"
curl -s -N --max-time 5 -H "Authorization: Bearer $TOKEN" -H "Last-Event-ID: $((first - 1))" \
    "$API/events/stream" > "$W/replay.sse" || true
python3 - "$W/follow.jsonl" "$W/replay.sse" "$W/follow-net.csv" "$NET_UUID" "$VM1" "$VM2" "$delete_end" <<'PY' || fail "followed events"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1])]
ids = [g['id'] for g in got]
assert ids == list(range(1, len(ids) + 1)), 'gap or repeat: %r' % ids
replay, cur = {}, None
for line in open(sys.argv[2]):
    if line.startswith('id: '):
        cur = int(line[4:])
    elif line.startswith('data: ') and cur is not None:
        replay[cur] = json.loads(line[6:])
        cur = None
for g in got:
    i = g.pop('id')
    assert replay.get(i) == g, (i, g, replay.get(i))
seen = {(g['object_uuid'], g['extra'].get('value')) for g in got if g['message'] == 'set attribute'}
for u in sys.argv[5:7]:
    assert (u, 'deleted') in seen, 'no deleted event of %s' % u
net = open(sys.argv[3]).read().splitlines()
assert net[0] == 'object type,object uuid,timestamp,node,duration,message,extra', net[:1]
assert len(net) > 2 and all(l.startswith('network,' + sys.argv[4] + ',') for l in net[1:]), net
print('%d events, ids %d..%d without gap or repeat, equal to the replay; %d network rows'
      % (len(ids), ids[0], ids[-1], len(net) - 1))
# How soon a wait ends after the state changed (polling alone: up to 1 s later).
ts = [g['timestamp'] for g in got if g['object_uuid'] == sys.argv[5] and g['extra'].get('value') == 'deleted']
if sys.argv[7]:
    print('cli_wait_after_change_ms %.0f (sf instance delete returned after the deleted event)'
          % ((float(sys.argv[7]) - ts[0]) * 1000))
PY
assert_instance_gone "$VM1"
assert_instance_gone "$VM2"
