#!/usr/bin/env bash
# End-to-end: the built `sf` CLI (cli/) against a running sf-api (with redis and nats; no
# workers or libvirt are needed for these commands). The namespace group in all three
# output formats: --simple and --json output must equal tests/golden/cli/namespace.{simple,json}
# (uuids and timestamps masked; SF_GOLDEN_UPDATE=1 rewrites them), --pretty is checked for
# its table and blocks. Also: settings from flags, SHAKENFIST_* and ~/.shakenfist; a wrong
# key and an unknown namespace exit 1 with upstream's prefixes on stderr; help is offline;
# request shapes and the one re-auth on 401 against a fake API (tests/tools/cli_wire.py).
source "$(dirname "$0")/lib.sh"

SF=$BUILD/sf
GOLDEN=$E2E_ROOT/tests/golden/cli
[ -x "$SF" ] || fail "$SF is missing (make all)"

# Offline: help and version need no server (and no configuration).
env -u SHAKENFIST_API_URL HOME=/nonexistent "$SF" --help | grep '^  namespace ' > /dev/null || fail "sf --help"
env -u SHAKENFIST_API_URL HOME=/nonexistent "$SF" namespace --help | grep '^  add-trust ' > /dev/null || fail "sf namespace --help"
[ "$("$SF" version)" = "Mozilla/5.0 (Ubuntu; Linux x86_64) Shaken Fist/0.7.5" ] || fail "sf version"
out=$(env -u SHAKENFIST_API_URL HOME=/nonexistent "$SF" namespace list 2>&1) && fail "no server configured: exit 0"
echo "$out" | grep "You have not specified the server" > /dev/null || fail "no server configured: $out"

# On the wire, against a fake API: request shapes, headers, one re-auth on 401.
python3 "$E2E_ROOT/tests/tools/cli_wire.py" "$SF" || fail "wire checks"

# A node with just what the API needs.
log "node $NODE, logs $W"
mkdir -m 0755 "$STORAGE"
REDIS_PORT=$(free_port); NATS_PORT=$(free_port); NATS_MON_PORT=$(free_port); API_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
"$E2E_ROOT/tools/sf-creds" "$W/creds" || fail "tools/sf-creds failed"
REDISCLI_AUTH=$(cat "$W/creds/redis_password")
export REDISCLI_AUTH
start_redis
start_nats
wait_until 20 redis redis_up
wait_until 20 nats nats_up
unset SF_AUTH_SECRET_FILE SF_REDIS_PASSWORD SF_NATS_PASSWORD
export SF_NODE=$NODE SF_REDIS_HOST=127.0.0.1 SF_REDIS_PORT=$REDIS_PORT \
    SF_NATS_URL=nats://127.0.0.1:$NATS_PORT SF_API_BIND=127.0.0.1 SF_API_PORT=$API_PORT \
    SF_STORAGE=$STORAGE SF_TEMPLATES=$E2E_ROOT/templates SF_MESH_DEV=lo SF_MESH_IP=127.0.0.1 \
    SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
    SF_NATS_PASSWORD_FILE=$W/creds/nats_password
SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export SF_AUTH_SECRET
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
"$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 || fail "sf-ctl bootstrap-system-key failed"
start_daemon sf-api
wait_until 30 sf-api api_up

unset SHAKENFIST_API_URL SHAKENFIST_NAMESPACE SHAKENFIST_KEY SHAKENFIST_ASYNC
mkdir -p "$W/home"

# sfc FORMAT ARGS...: one sf run; how it gets its settings depends on the format (pretty:
# flags, simple: ~/.shakenfist, json: SHAKENFIST_* variables).
sfc() {
    local fmt=$1; shift
    case $fmt in
        pretty) HOME=$W/home "$SFBIN" --pretty --namespace system --key "$KEY" --apiurl "$API" "$@" ;;
        simple) HOME=$W/home-file "$SFBIN" --simple "$@" ;;
        json) HOME=$W/home SHAKENFIST_API_URL=$API SHAKENFIST_NAMESPACE=system SHAKENFIST_KEY=$KEY \
                  "$SFBIN" --json "$@" ;;
    esac
}
mkdir -p "$W/home-file"
printf '{"namespace": "system", "key": "%s", "apiurl": "%s"}\n' "$KEY" "$API" > "$W/home-file/.shakenfist"

# The scenario; every command's stdout, stderr and exit status into $W/out.FORMAT.
mask() {
    sed -E -e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/UUID/g' \
        -e 's/^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)? /TIMESTAMP /' \
        -e 's/"(timestamp|created|updated)": [0-9.e+]+/"\1": TIME/'
}
# The server lists namespaces in no set order: rows (pretty, simple) and list items (json)
# are sorted for the comparison. For json the text must first be exactly Python's
# json.dumps(indent=4, sort_keys=True) of itself.
sort_list() {
    python3 -c '
import json, sys
fmt, text = sys.argv[1], sys.stdin.read()
if fmt == "json":
    data = json.loads(text)
    if json.dumps(data, indent=4, sort_keys=True) + "\n" != text:
        print("NOT PYTHON JSON.DUMPS OUTPUT")
    if isinstance(data, list):
        data.sort(key=lambda d: d.get("name", ""))
    print(json.dumps(data, indent=4, sort_keys=True))
elif fmt == "simple":
    lines = text.splitlines()
    print("\n".join(lines[:1] + sorted(lines[1:])))
else:
    lines = text.splitlines()
    print("\n".join(lines[:3] + sorted(lines[3:-1]) + lines[-1:]))
' "$1"
}
step() {
    local fmt=$1 rc=0; shift
    echo "\$ sf $*"
    sfc "$fmt" "$@" > "$W/so" 2> "$W/se" || rc=$?
    if [ "$2" = list ] && [ -s "$W/so" ]; then sort_list "$fmt" < "$W/so" > "$W/so.sorted"; mv "$W/so.sorted" "$W/so"; fi
    mask < "$W/so"
    mask < "$W/se" | sed "s/^/stderr: /"
    echo "exit $rc"
}
scenario() {
    local f=$1
    step "$f" namespace create cli-one
    step "$f" namespace create cli-two
    step "$f" namespace add-key cli-one k1 secret-one
    step "$f" namespace set-metadata cli-one owner alice
    step "$f" namespace set-metadata cli-one tier "gold plated"
    step "$f" namespace add-trust cli-one cli-two
    step "$f" namespace list
    step "$f" namespace show cli-one
    step "$f" namespace get-metadata cli-one
    step "$f" namespace remove-trust cli-one cli-two
    step "$f" namespace delete-metadata cli-one tier
    step "$f" namespace delete-key cli-one k1
    step "$f" namespace show cli-one
    step "$f" namespace show cli-nosuch
    step "$f" namespace delete cli-two
    step "$f" namespace delete cli-one
    step "$f" namespace list
}
SFBIN=$SF
for f in pretty simple json; do
    log "scenario --$f"
    scenario "$f" > "$W/out.$f"
done

# Side by side with upstream's sf-client (cli.md §6), when SF_UPSTREAM_CLIENT names it: the
# same scenario must print the same, except where we chose to differ on purpose: errors go
# to stderr (upstream: stdout, with colour codes) and `namespace get-metadata --json`
# prints the metadata (upstream: nothing).
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
    if 'nosuch' in k or ('get-metadata' in k and '.json' in sys.argv[1]):
        continue
    if ours[k] != theirs.get(k):
        bad = 1
        print('differs: %s\n ours: %r\n upstream: %r' % (k, ours[k], theirs.get(k)))
sys.exit(bad)
PY
    done
    log "same output as upstream's sf-client in all three formats"
fi

# A namespace key works for its own namespace; a wrong key is "Not authenticated", exit 1.
"$SF" --apiurl "$API" --namespace system --key "$KEY" namespace create cli-auth || fail "create cli-auth"
"$SF" --apiurl "$API" --namespace system --key "$KEY" namespace add-key cli-auth k secret || fail "add-key"
"$SF" --simple --apiurl "$API" --namespace cli-auth --key secret namespace show cli-auth | grep -x 'name:cli-auth' > /dev/null ||
    fail "show with the namespace's own key"
out=$("$SF" --apiurl "$API" --namespace cli-auth --key wrong namespace list 2>&1) && fail "a wrong key gave exit 0"
echo "$out" | grep "ERROR: Not authenticated: " > /dev/null || fail "wrong key: $out"
out=$("$SF" --apiurl "$API" --namespace system --key "$KEY" namespace list 2>/dev/null)
echo "$out" | grep cli-auth > /dev/null || fail "list after auth failure"

for f in simple json; do
    if [ "${SF_GOLDEN_UPDATE:-0}" = 1 ]; then
        mkdir -p "$GOLDEN"; cp "$W/out.$f" "$GOLDEN/namespace.$f"; log "updated $GOLDEN/namespace.$f"
    fi
    diff -u "$GOLDEN/namespace.$f" "$W/out.$f" || fail "--$f output differs from tests/golden/cli/namespace.$f"
done

# --pretty: the prettytable list, and the show blocks.
P=$W/out.pretty
grep -qxF '|   name  |  state  | trusted namespaces |' "$P" || fail "pretty list header: $(cat "$P")"
grep -qxF '| cli-one | created |   system cli-two   |' "$P" || fail "pretty list row of cli-one: $(cat "$P")"
grep -qxF 'name          : cli-one' "$P" || fail "pretty show"
grep -qxF 'Key Names:' "$P" && grep -qxF '    k1' "$P" || fail "pretty show key names"
grep -qxF '    owner: alice' "$P" || fail "pretty show metadata"
grep -qxF 'Full trust:' "$P" || fail "pretty show trust"
grep -q '^stderr: TIMESTAMP ERROR: Resource not found: namespace not found$' "$P" || fail "pretty: unknown namespace error"
log "all three formats ok"
