#!/usr/bin/env bash
# End-to-end: `sf instance` (cli/cmd_instance.c) against a full node booting real TCG VMs.
# 1. On the wire, against a fake API: the POST /instances body of a create with every
#    option is what upstream's client sends (byte for byte when SF_UPSTREAM_CLIENT names
#    it, else upstream's rules written out here); refusals send nothing and exit 1;
#    screenshot's requests with and without blob-data-limit, and the file it writes.
# 2. Every instance command in all three formats (one VM per format): --simple and --json
#    must equal tests/golden/cli/instance.{simple,json} (uuids, MACs, addresses, node,
#    ports and times masked; SF_GOLDEN_UPDATE=1 rewrites them), --pretty is checked for its
#    table and blocks. Settings: flags (pretty), ~/.shakenfist (simple), SHAKENFIST_* (json).
# 3. What create sent is what the instance has (read back with show --json); delete waits
#    until deleted; --async continue returns at once; delete-all --confirm waits for each;
#    consoledata prints the guest's console; screenshot writes the guest's screen (an image)
#    and prints nothing; an unknown instance exits 1 with
#    "Resource not found" on stderr.
source "$(dirname "$0")/lib.sh"

SF=${SF_CLI:-$BUILD/sf}   # e.g. SF_CLI=$PWD/build-asan/sf
GOLDEN=$E2E_ROOT/tests/golden/cli
[ -x "$SF" ] || fail "$SF is missing (make all)"
SSHKEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDtY0hS9bX2N1oFJm5gK1L1Wq2dYc0mO1bq8y7l7X6Ib cli@test"
USERDATA=$(printf 'hello from sf\n' | base64)

# ---- 1. the create body on the wire -------------------------------------------------------
# (help first: offline, from the same tables)
env -u SHAKENFIST_API_URL HOME=/nonexistent "$SF" instance --help | grep '^  consoledata ' > /dev/null ||
    fail "sf instance --help"
env -u SHAKENFIST_API_URL HOME=/nonexistent "$SF" instance create --help | grep -e '-N, --networkspec K=V' > /dev/null ||
    fail "sf instance create --help"
printf '%s\n' "$SSHKEY" > "$W/key.pub"
printf '#!/bin/sh\necho hi\n' > "$W/userdata"
python3 - "$SF" "${SF_UPSTREAM_CLIENT:-}" "$W" <<'PY' || fail "create on the wire"
import base64, http.server, json, os, subprocess, sys, threading
SF, UPSTREAM, W = sys.argv[1], sys.argv[2], sys.argv[3]
bodies = []
CAPS = []   # capabilities GET / lists (none by default)
SHOT_BLOB, SHOT = '0c5a4e0e-5ee1-4c58-9d5b-0d1e7c3b0a11', b'P6\n2 1\n255\n' + bytes(range(6))

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def handle_any(self):
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n).decode() if n else None
        if self.path == '/auth':
            return self.reply(200, {'access_token': 't', 'token_type': 'Bearer', 'expires_in': 900})
        if self.path == '/':
            if CAPS:
                return self.reply(200, None, ''.join('<li>%s</li>' % c for c in CAPS).encode(), 'text/html')
            return self.reply(200, None)
        bodies.append((self.command, self.path, body))
        if CAPS and self.path == '/instances/vm1/screenshot':
            return self.reply(200, SHOT_BLOB)
        if CAPS and self.path.startswith('/blobs/%s/data?' % SHOT_BLOB):
            return self.reply(200, None, SHOT, 'text/plain')
        return self.reply(400, {'error': 'captured', 'status': 400})
    def reply(self, code, doc, data=None, ctype='application/json'):
        data = json.dumps(doc).encode() if data is None else data
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = do_PUT = do_DELETE = handle_any

srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
url = 'http://127.0.0.1:%d' % srv.server_address[1]

def run(client, *args):
    bodies.clear()
    env = dict(os.environ, HOME='/nonexistent', SHAKENFIST_API_URL=url, SHAKENFIST_NAMESPACE='system',
               SHAKENFIST_KEY='k')
    p = subprocess.run([client] + list(args), env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr, list(bodies)

full = ['instance', 'create', 'vm1', '2', '512',
        '-d', '8@http://images/debian.qcow2', '-d', '4', '-D', 'size=2,bus=sata,type=cdrom',
        '-n', 'net-b@10.0.0.5', '-f', 'net-a', '-N', 'network_uuid=net-c,model=e1000,float=True',
        '-i', W + '/key.pub', '-u', W + '/userdata', '-p', 'node1', '-V', 'model=qxl,vdi=vnc',
        '--configdrive', 'NONE', '--namespace', 'other', '--secure-boot', '--uefi',
        '--nvram-template', 'tmpl', '-m', 'owner=alice', '-m', 'tags=["web", "blue"]',
        '-m', 'affinity={"fast": 10}', '-s', 'sf-agent', '-s', 'second']
ssh = open(W + '/key.pub').read()
want = {
    'name': 'vm1', 'cpus': 2, 'memory': 512,
    'network': [
        {'network_uuid': 'net-a', 'macaddress': None, 'model': 'virtio', 'float': True},
        {'network_uuid': 'net-b', 'macaddress': None, 'model': 'virtio', 'address': '10.0.0.5'},
        {'network_uuid': 'net-c', 'model': 'e1000', 'float': True}],
    'disk': [
        {'size': 8, 'base': 'http://images/debian.qcow2', 'bus': None, 'type': 'disk'},
        {'size': 4, 'base': None, 'bus': None, 'type': 'disk'},
        {'size': 2, 'bus': 'sata', 'type': 'cdrom'}],
    'ssh_key': ssh, 'user_data': base64.b64encode(b'#!/bin/sh\necho hi\n').decode(),
    'namespace': 'other', 'video': {'model': 'qxl', 'memory': 16384, 'vdi': 'vnc'},
    'configdrive': 'none', 'metadata': {'owner': 'alice', 'tags': ['web', 'blue'], 'affinity': {'fast': 10}},
    'side_channels': ['sf-agent', 'second'], 'uefi': True, 'secure_boot': True, 'nvram_template': 'tmpl',
    'placed_on': 'node1'}
rc, out, seen = run(SF, *full)
posts = [b for b in seen if b[:2] == ('POST', '/instances')]
assert rc == 1 and len(posts) == 1, (rc, out, seen)
assert posts[0][2] == json.dumps(want, indent=4, sort_keys=True), posts[0][2]
assert 'Malformed Request: captured' in out, out

# nothing set: every key present, null when unset; -I/-U win over -i/-u
rc, out, seen = run(SF, 'instance', 'create', 'vm2', '1', '128', '-d', '1', '-i', W + '/key.pub', '-I', 'KEY',
                    '-u', W + '/userdata', '-U', 'aGk=')
body = json.loads(seen[0][2])
assert body == {'name': 'vm2', 'cpus': 1, 'memory': 128, 'network': [],
                'disk': [{'size': 1, 'base': None, 'bus': None, 'type': 'disk'}],
                'ssh_key': 'KEY', 'user_data': 'aGk=', 'namespace': None,
                'video': {'model': 'cirrus', 'memory': 16384}, 'configdrive': 'openstack-disk', 'metadata': {},
                'side_channels': [], 'uefi': False, 'secure_boot': False, 'nvram_template': None}, body

# refusals: a message, exit 1, and nothing sent
for args, msg in [
        (['vm3', '1', '64', '-d', '1'], 'Specified memory size is 64MB. This is very small.'),
        (['vm3', '1', '256'], 'You must specify at least one disk'),
        (['vm3', '1', '256', '-d', 'x@y'], 'Disk size is not an integer'),
        (['vm3', '1', '256', '-d', '1', '-D', 'size'], 'Error in disk specification - should be key=value: size'),
        (['vm3', '1', '256', '-d', '1', '-N', 'net'], 'Error in network specification - should be key=value: net'),
        (['vm3', '1', '256', '-d', '1', '-V', 'vnc'], 'Error in video specification -  should be key=value: vnc'),
        (['vm3', '1', '256', '-d', '1', '-m', 'tags=[x'], 'Reserved metadata keys (tags, affinity) must contain'),
        (['vm3', '1', '256', '-d', '1', '-m', 'novalue'], 'Unable to parse metadata'),
        (['vm3', 'two', '256', '-d', '1'], "Invalid value for 'CPUS': 'two' is not a valid integer"),
        (['vm3', '1', '256', '-d', '1', '-i', W + '/nokey'], 'does not exist'),
        (['vm3', '1', '256', '-d', '1', '--configdrive', 'cdrom'], "Invalid value for '--configdrive'")]:
    rc, out, seen = run(SF, 'instance', 'create', *args)
    assert rc == 1 and msg in out and not seen, (args, rc, out, seen)
rc, out, seen = run(SF, 'instance', 'create', 'vm3', '1', '64', '-d', '1', '--force')
assert json.loads(seen[0][2])['memory'] == 64, seen
rc, out, seen = run(SF, 'instance', 'delete-all')
assert rc == 1 and 'You must be sure. Use option --confirm.' in out and not seen, (rc, out, seen)
rc, out, seen = run(SF, 'instance', 'delete-all', '--confirm', '--namespace', 'ns1')
assert seen == [('DELETE', '/instances', json.dumps({'confirm': True, 'namespace': 'ns1'}, indent=4, sort_keys=True))], seen
rc, out, seen = run(SF, 'instance', 'list')
assert seen == [('GET', '/instances', '{\n    "all": false\n}')], seen
rc, out, seen = run(SF, 'instance', 'list', '-a')
assert seen == [('GET', '/instances', '{\n    "all": true\n}')], seen
rc, out, seen = run(SF, 'instance', 'consoledata', 'vm1')
assert seen == [('GET', '/instances/vm1/consoledata', '{\n    "length": 10240\n}')], seen
rc, out, seen = run(SF, 'instance', 'consoledata', 'vm1', '0')
assert seen == [('GET', '/instances/vm1/consoledata', None)], seen
# power and console commands: one request each, as upstream's client sends it
power = [(['reboot', 'vm1'], ('POST', '/instances/vm1/rebootsoft', None)),
         (['reboot', '--hard', 'vm1'], ('POST', '/instances/vm1/reboothard', None)),
         (['reboot', '--soft', 'vm1'], ('POST', '/instances/vm1/rebootsoft', None)),
         (['poweroff', 'vm1'], ('POST', '/instances/vm1/poweroff', None)),
         (['poweron', 'vm1'], ('POST', '/instances/vm1/poweron', None)),
         (['pause', 'vm1'], ('POST', '/instances/vm1/pause', None)),
         (['unpause', 'vm1'], ('POST', '/instances/vm1/unpause', None)),
         (['consoledelete', 'vm1'], ('DELETE', '/instances/vm1/consoledata', None))]
for args, req in power:
    rc, out, seen = run(SF, 'instance', *args)
    assert rc == 1 and seen == [req], (args, rc, out, seen)
    if UPSTREAM:
        rc, out, theirs = run(UPSTREAM, 'instance', *args)
        assert [t[:2] for t in theirs] == [req[:2]], (args, theirs)
# this fake server lists no capability: the VDI commands refuse, as upstream's do
for cmd in ('vdiconsolefile', 'vdiconsole'):
    rc, out, seen = run(SF, 'instance', cmd, 'vm1')
    assert rc == 1 and not seen and 'Unfortunately this server does not implement VDI console helpers.' in out, (
        cmd, rc, out, seen)
# screenshot: DESTINATION is opened first (as upstream's); without the capability nothing
# is asked. With it: GET screenshot, then the blob's bytes in one request (with
# blob-data-limit: offset and a 512 MiB limit), written as they came; nothing printed.
dest = os.path.join(W, 'shot.ppm')
rc, out, seen = run(SF, 'instance', 'screenshot', 'vm1', dest)
assert rc == 1 and not seen and 'does not support fetching a screenshot of an instance' in out, (rc, out, seen)
assert os.path.exists(dest)
for caps, query in ((['instance-screenshot'], 'offset=0'),
                    (['instance-screenshot', 'blob-data-limit'], 'offset=0&limit=536870912')):
    CAPS[:] = caps
    for client, fmt in [(SF, '--simple'), (SF, '--json')] + ([(UPSTREAM, '--json')] if UPSTREAM else []):
        os.unlink(dest)
        rc, out, seen = run(client, fmt, 'instance', 'screenshot', 'vm1', dest)
        assert rc == 0 and out == '', (client, caps, rc, out)
        assert [b[:2] for b in seen] == [('GET', '/instances/vm1/screenshot'),
                                         ('GET', '/blobs/%s/data?%s' % (SHOT_BLOB, query))], (client, caps, seen)
        assert open(dest, 'rb').read() == SHOT, (client, caps)
CAPS[:] = []
rc, out, seen = run(SF, 'instance', 'screenshot', 'vm1', os.path.join(W, 'no', 'such', 'dir'))
assert rc == 1 and not seen and 'cannot open' in out, (rc, out, seen)

# byte for byte what upstream's client sends, when we have it
if UPSTREAM:
    rc, out, theirs = run(UPSTREAM, *full)
    tposts = [b for b in theirs if b[:2] == ('POST', '/instances')]
    want = json.loads(tposts[0][2])
    want['video']['memory'] = 16384   # ours sends an int (see cli/spec.h), theirs the string
    ours = json.loads(posts[0][2])
    assert ours == want, (ours, want)
    print('create body identical to upstream sf-client\'s')
PY
log "create body on the wire ok"

# ---- 2. the scenario on a real node -------------------------------------------------------
e2e_setup
create_network cli-net
unset SHAKENFIST_API_URL SHAKENFIST_NAMESPACE SHAKENFIST_KEY SHAKENFIST_ASYNC
mkdir -p "$W/home" "$W/home-file"
printf '{"namespace": "system", "key": "%s", "apiurl": "%s"}\n' "$KEY" "$API" > "$W/home-file/.shakenfist"

# sfc FORMAT ARGS...: one run; the settings come from flags (pretty), ~/.shakenfist (simple)
# or SHAKENFIST_* (json). Waits are the default's (pause: at most 60 s).
sfc() {
    local fmt=$1; shift
    case $fmt in
        pretty) HOME=$W/home "$SFBIN" --pretty --namespace system --key "$KEY" --apiurl "$API" "$@" ;;
        simple) HOME=$W/home-file "$SFBIN" --simple "$@" ;;
        json) HOME=$W/home SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY \
                  "$SFBIN" --json "$@" ;;
    esac
}
mask() {
    python3 -c '
import re, sys
node, image, net, w = sys.argv[1:5]
t = sys.stdin.read()
t = t.replace(w, "W").replace(image, "IMAGE").replace(node, "NODE")
t = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", t)
t = re.sub(r"\b[0-9a-f]{2}(:[0-9a-f]{2}){5}\b", "MAC", t)
t = re.sub(r"\b" + re.escape(net) + r"\d+\b", "IP", t)
t = re.sub(r"(?m)^(stderr: )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?", lambda m: (m.group(1) or "") + "TIMESTAMP", t)
t = re.sub(r"(?m)^(\|\s*)\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?(\s*)", lambda m: m.group(1) + "TIMESTAMP" + m.group(3), t)
t = re.sub("\"(timestamp|duration)\": [0-9.e+-]+", "\"\\1\": N", t)
t = re.sub("\"(console_port|vdi_port|vdi_tls_port)\": [0-9]+", "\"\\1\": PORT", t)
t = re.sub(r"(?m)^(console port|vdi port|vdi tls port)(\s*:\s*)\d+$", r"\1\2PORT", t)
sys.stdout.write(t)' "$NODE" "$IMAGE_URL" "${NET_ROUTER%1}" "$W"
}
step() {
    local fmt=$1 rc=0; shift
    echo "\$ sf $*" | mask
    sfc "$fmt" "$@" > "$W/so" 2> "$W/se" || rc=$?
    mask < "$W/so"
    mask < "$W/se" | sed "s/^/stderr: /"
    echo "exit $rc"
}
scenario() {
    local f=$1 vm=cli-$1
    step "$f" instance create "$vm" 1 256 -d "1@$IMAGE_URL/sftest.qcow2" -d 2 -n cli-net \
        -N "network_uuid=$NET_UUID,model=e1000" -m owner=alice -m 'tags=["web", "blue"]' \
        -I "$SSHKEY" -U "$USERDATA"
    step "$f" instance show "$vm"
    step "$f" instance list
    step "$f" instance set-metadata "$vm" affinity '{"cpu": 2}'
    step "$f" instance set-metadata "$vm" tier gold
    step "$f" instance delete-metadata "$vm" tier
    step "$f" instance show "$vm"
    step "$f" instance events "$vm" -t audit -l 1
    # power and console commands: `{}` with --json, nothing otherwise; a 409 on stderr
    step "$f" instance poweroff "$vm"
    step "$f" instance reboot "$vm"
    step "$f" instance poweron "$vm"
    step "$f" instance pause "$vm"
    step "$f" instance unpause "$vm"
    step "$f" instance reboot --hard "$vm"
    step "$f" instance consoledelete "$vm"
    step "$f" instance screenshot "$vm" "$W/screen.$f"
    step "$f" instance show cli-nosuch
    step "$f" instance delete "$vm"
    step "$f" instance list
}
SFBIN=$SF
for f in pretty simple json; do
    log "scenario --$f"
    t=$SECONDS
    scenario "$f" > "$W/out.$f"
    log "scenario --$f: $((SECONDS - t)) s"
done

for f in simple json; do
    if [ "${SF_GOLDEN_UPDATE:-0}" = 1 ]; then
        mkdir -p "$GOLDEN"; cp "$W/out.$f" "$GOLDEN/instance.$f"; log "updated $GOLDEN/instance.$f"
    fi
    diff -u "$GOLDEN/instance.$f" "$W/out.$f" || fail "--$f output differs from tests/golden/cli/instance.$f"
done
# screenshot wrote the guest's screen (PPM or PNG, as QEMU makes it) in every format.
for f in pretty simple json; do
    head -c 8 "$W/screen.$f" | od -An -c | tr -d ' ' | grep -qE '^(P6|211PNG)' ||
        fail "instance screenshot --$f: $W/screen.$f is no image ($(head -c 8 "$W/screen.$f" | od -An -c))"
done
log "screenshot ok ($(wc -c < "$W/screen.json") bytes)"
# The scenarios can outlast the setup's token (15 min) on a loaded machine: a fresh one.
TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
        json_get access_token) || fail "POST /auth gave no access_token"

# --pretty: the table (interfaces column left-aligned, one line per interface) and blocks.
P=$W/out.pretty
grep -qE '^\| +uuid +\| +name +\| namespace \| cpus \| memory \| hypervisor \| power state \|  state  \| interfaces +\|$' "$P" ||
    fail "pretty list header: $(cat "$P")"
grep -qE '^\| UUID \| cli-pretty \|   system  \|  1   \|  256   \| NODE \|      on     \| created \| 0: IP +\|$' "$P" ||
    fail "pretty list row"
grep -qE '^\| +\| +\| +\| +\| +\| +\| +\| +\| 1: IP +\|$' "$P" || fail "pretty list: second interface line"
grep -qxF 'disk spec     : type=disk   bus=None  size=1    base=IMAGE/sftest.qcow2  ' "$P" || fail "pretty disk spec"
grep -qxF '                type=disk   bus=None  size=2    base=None  ' "$P" || fail "pretty second disk"
grep -qxF 'video         : model=cirrus  memory=16384  vdi=spice  ' "$P" || fail "pretty video"
grep -qxF "    tags    : ['web', 'blue']" "$P" || fail "pretty metadata"
grep -qxF "    affinity: {'cpu': 2}" "$P" || fail "pretty metadata after set-metadata"
grep -qxF '    model   : e1000' "$P" || fail "pretty interface block"
grep -q '^stderr: TIMESTAMP ERROR: Resource not found: instance not found$' "$P" || fail "pretty: unknown instance error"
log "all three formats ok"

# Side by side with upstream's sf-client (cli.md §6) when SF_UPSTREAM_CLIENT names it: the
# same scenario prints the same, except that errors go to stderr here (upstream: stdout).
if [ -n "${SF_UPSTREAM_CLIENT:-}" ]; then
    SFBIN=$SF_UPSTREAM_CLIENT
    for f in pretty simple json; do
        log "scenario --$f with $SF_UPSTREAM_CLIENT"
        scenario "$f" > "$W/up.$f"
        python3 - "$W/out.$f" "$W/up.$f" <<'PY' || fail "--$f differs from upstream's sf-client"
import sys
def steps(path):
    out, cur = {}, None
    for line in open(path).read().splitlines():
        if line.startswith('$ sf '):
            cur = line; out.setdefault(cur, [])
        elif cur is not None:
            out[cur].append(line)
    return out
ours, theirs = steps(sys.argv[1]), steps(sys.argv[2])
bad = 0
for k in ours:
    if 'nosuch' in k:
        continue
    if ours[k] != theirs.get(k):
        bad = 1
        print('differs: %s\n ours: %r\n upstream: %r' % (k, ours[k], theirs.get(k)))
sys.exit(bad)
PY
    done
    log "same output as upstream's sf-client in all three formats"
fi


# ---- 3. behaviour -----------------------------------------------------------------------
# What create sent is what the instance has (the json scenario's create, read back).
python3 - "$W/out.json" "$SSHKEY" "$USERDATA" <<'PY' || fail "create --json does not show what was sent"
import json, re, sys
text = open(sys.argv[1]).read()
start = text.index('$ sf instance create cli-json')
body = text[text.index('\n', start) + 1:text.index('\nexit ', start)]
# The transcript is masked: ports read PORT (not JSON), numbers that vary read N.
i = json.loads(re.sub(r'": (PORT|N)\b', '": 0', body))
assert i['state'] == 'created' and i['power_state'] == 'on', i
assert [(d['size'], d['base'], d['type']) for d in i['disk_spec']] == \
    [(1, 'IMAGE/sftest.qcow2', 'disk'), (2, None, 'disk')], i['disk_spec']
assert [(n['order'], n['model']) for n in i['network_interfaces']] == [(0, 'virtio'), (1, 'e1000')], i
assert i['ssh_key'] == sys.argv[2] and i['user_data'] == sys.argv[3], i
assert i['metadata'] == {'owner': 'alice', 'tags': ['web', 'blue']}, i['metadata']
assert i['video'] == {'model': 'cirrus', 'memory': 16384, 'vdi': 'spice'}, i['video']
PY
# Delete waited: the json scenario's delete printed the instance in state deleted, and the
# three instances are gone from libvirt and the disk.
grep -A3 '^\$ sf instance delete cli-json$' "$W/out.json" > /dev/null || fail "no delete step"
python3 -c '
import sys; t = open(sys.argv[1]).read(); s = t.index("$ sf instance delete cli-json")
assert "\"state\": \"deleted\"" in t[s:t.index("\nexit ", s)]' "$W/out.json" || fail "delete --json did not end deleted"
api_ok GET /instances '{"all": true}'
for u in $(python3 -c 'import json,sys; print(" ".join(i["uuid"] for i in json.load(sys.stdin) if i["name"].startswith("cli-")))' <<< "$RESP"); do
    INSTANCES+=("$u")
    api_ok GET "/instances/$u"
    [ "$(json_get state <<< "$RESP")" = deleted ] || fail "instance $u is not deleted: $RESP"
    assert_instance_gone "$u"
done

# --async continue: create returns at once, before the instance is created (a create that
# waits returns it created, as the scenario's did).
t=$(date +%s.%N)
out=$("$SF" --json --async continue --namespace system --key "$KEY" --apiurl "$API" \
      instance create cli-fast 1 256 -d "1@$IMAGE_URL/sftest.qcow2" -n cli-net) || fail "create --async continue: $out"
dt=$(python3 -c "import time; print('%.2f' % (time.time() - $t))")
FAST=$(json_get uuid <<< "$out") || fail "no uuid: $out"
INSTANCES+=("$FAST")
st=$(json_get state <<< "$out")
case $st in initial|preflight|creating) ;; *) fail "create --async continue returned state $st";; esac
# (the state is the proof it did not wait; the time only bounds a loaded machine's requests)
python3 -c "import sys; sys.exit(0 if $dt < 15 else 1)" || fail "create --async continue took $dt s"
log "create --async continue returned in $dt s with state $st"
wait_state instances "$FAST" 120 created

# consoledata: the guest's console as text (LENGTH -1 = all of it; after `--`, as with click):
# its config drive's metadata names the instance (booting further is create-instance.sh's
# business; a loaded TCG guest may take minutes), and at most LENGTH bytes.
start=$SECONDS
while :; do
    "$SF" --apiurl "$API" --namespace system --key "$KEY" instance consoledata cli-fast -- -1 > "$W/console" ||
        fail "consoledata failed"
    grep -q SFTEST-META-END "$W/console" && break
    [ $((SECONDS - start)) -lt 180 ] || fail "no SFTEST-META-END on the console: $(tail -5 "$W/console")"
    sleep 2
done
grep -q "\"uuid\": \"$FAST\"" "$W/console" || fail "the console's metadata does not name $FAST"
n=$("$SF" --json --apiurl "$API" --namespace system --key "$KEY" instance consoledata cli-fast 20 | wc -c)
[ "$n" -le 21 ] && [ "$n" -gt 1 ] || fail "consoledata LENGTH 20 printed $n bytes"
log "consoledata ok ($(wc -c < "$W/console") bytes)"

# delete-all: exit 1 without --confirm; with it, every instance is deleted when it returns.
out=$("$SF" --apiurl "$API" --namespace system --key "$KEY" instance delete-all 2>&1) && fail "delete-all without --confirm: exit 0"
grep -qxF 'You must be sure. Use option --confirm.' <<< "$out" || fail "delete-all without --confirm: $out"
out=$("$SF" --json --apiurl "$API" --namespace system --key "$KEY" instance delete-all --confirm \
      --namespace system) || fail "delete-all --confirm: $out"
[ "$(json_get 0 <<< "$out")" = "$FAST" ] || fail "delete-all did not list $FAST: $out"
api_ok GET "/instances/$FAST"
[ "$(json_get state <<< "$RESP")" = deleted ] || fail "delete-all returned before $FAST was deleted: $RESP"
assert_instance_gone "$FAST"
log "delete-all waited for each"

# Measurement (logged, not asserted): wall time of `instance list` (auth + one GET), the
# median of 5 runs, beside upstream's sf-client when we have it.
list_ms() {
    python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
ts = []
for _ in range(5):
    t = time.monotonic()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    ts.append((time.monotonic() - t) * 1000)
print('%.1f' % statistics.median(ts))
PY
}
log "instance list: $(list_ms "$SF" --simple --apiurl "$API" --namespace system --key "$KEY" instance list) ms (median of 5)"
if [ -n "${SF_UPSTREAM_CLIENT:-}" ]; then
    log "instance list with upstream's sf-client: $(list_ms "$SF_UPSTREAM_CLIENT" --simple --apiurl "$API" \
        --namespace system --key "$KEY" instance list) ms (median of 5)"
fi
