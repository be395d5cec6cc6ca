# shellcheck shell=bash
# Shared helpers for the end-to-end tests (sourced, not run).  Each test gets its own
# redis-server, nats-server, image HTTP server and the four sf daemons on free loopback
# ports, a unique node name and storage dir; libvirtd/virtlogd are shared with the machine
# (started here only if they are not running, and then stopped at the end).  Everything
# is cleaned up by PID / exact name in the EXIT trap, also on failure.
set -euo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${SF_E2E_BUILD:-$E2E_ROOT/build}   # e.g. SF_E2E_BUILD=$PWD/build-asan
E2E_ID=$(python3 -c 'import secrets; print(secrets.token_hex(3))')
NODE=e2e-$E2E_ID
STORAGE=/srv/sf-e2e-$E2E_ID
W=$(mktemp -d /tmp/sf-e2e.XXXXXX)
chmod 755 "$W"
T0=$SECONDS

declare -A PIDS=()        # name -> pid of everything started here
STARTED=()                # names, in start order
SF_DAEMONS=(sf-network sf-blob sf-compute sf-api)
INSTANCES=()              # uuids of instances created (for cleanup)
NETWORKS=()               # "uuid vxid" of networks created (for cleanup)
EGR_BR=egr-br-sf          # shared NAT egress bridge (workers/network/netplumb.h)
EGR_BR_EXISTED=0
ip link show "$EGR_BR" > /dev/null 2>&1 && EGR_BR_EXISTED=1
VIRSH=(virsh -q -c qemu:///system)
TOKEN=""
RESP=""                   # body of the last api call
CODE=""                   # HTTP status of the last api call

log() { echo "[$(date +%T) +$((SECONDS - T0))s] $*"; }

dump_logs() {
    local f
    for f in "$W"/*.log; do
        [ -f "$f" ] || continue
        echo "---- last 30 lines of $(basename "$f")"
        tail -n 30 "$f"
    done
}

fail() {
    log "FAIL: $*"
    dump_logs
    exit 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# json_get PATH: read JSON on stdin, print the value at PATH (dot-separated keys and list
# indexes, e.g. interfaces.0.ipv4; "" = the whole document).  Strings print raw, other
# values as JSON; a missing path prints nothing and returns 1.
json_get() {
    python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
    for k in [k for k in sys.argv[1].split(".") if k]:
        d = d[int(k)] if isinstance(d, list) else d[k]
except Exception:
    sys.exit(1)
print(d if isinstance(d, str) else json.dumps(d))' "${1:-}"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# Start NAME ARGV... in the background, logging to $W/NAME.log.
spawn() {
    local name=$1; shift
    "$@" >> "$W/$name.log" 2>&1 < /dev/null &
    PIDS[$name]=$!
    STARTED+=("$name")
}

stop_pid() {   # name: TERM, up to 10 s, then KILL
    local name=$1 pid=${PIDS[$1]:-} i
    alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

wait_until() {   # timeout-seconds description command...
    local t=$1 what=$2 start=$SECONDS; shift 2
    until "$@"; do
        [ $((SECONDS - start)) -lt "$t" ] || fail "timeout (${t}s) waiting for $what"
        sleep 0.1
    done
}

# ---- infrastructure -------------------------------------------------------------------

# redis-cli takes the password from REDISCLI_AUTH (exported by e2e_setup), never from argv.
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep PONG > /dev/null; }
nats_up() { curl -sf "http://127.0.0.1:$NATS_MON_PORT/healthz?js-enabled-only=true" > /dev/null; }
libvirt_up() { virsh -c qemu:///system version > /dev/null 2>&1; }
http_up() { curl -sf -o /dev/null "$IMAGE_URL/"; }
api_up() { curl -sf -o /dev/null "$API/"; }

ensure_libvirt() {
    local p
    p=$(cat /run/virtlogd.pid 2>/dev/null || true)
    if ! alive "$p"; then
        spawn virtlogd setsid virtlogd
        log "started virtlogd (pid ${PIDS[virtlogd]})"
    fi
    p=$(cat /run/libvirtd.pid 2>/dev/null || true)
    if ! alive "$p"; then
        spawn libvirtd setsid env LIBVIRT_LOG_OUTPUTS=3:stderr libvirtd
        log "started libvirtd (pid ${PIDS[libvirtd]}); the first start takes ~8 s"
    fi
    wait_until 120 libvirtd libvirt_up
}

# Redis and NATS with the credentials of $W/creds (tools/sf-creds); tests that restart
# them use these too.
start_redis() {
    spawn redis redis-server "$W/creds/redis.conf" --bind 127.0.0.1 --port "$REDIS_PORT" \
        --save '' --appendonly no --dir "$W" --daemonize no
}
start_nats() {
    spawn nats nats-server -c "$W/creds/nats.conf" -js -a 127.0.0.1 -p "$NATS_PORT" \
        -m "$NATS_MON_PORT" -sd "$W/js"
}

start_daemon() {   # sf-network | sf-blob | sf-compute | sf-api
    spawn "$1" "$BUILD/$1"
}

# Bring up the whole node: redis, nats, libvirt, image server, the four daemons; get a token.
e2e_setup() {
    local b
    for b in sf-api sf-compute sf-network sf-blob sf-ctl; do
        [ -x "$BUILD/$b" ] || fail "$BUILD/$b is missing (make all)"
    done
    [ -f "$BUILD/testimage/sftest.qcow2" ] || fail "build/testimage/sftest.qcow2 is missing (make testimage)"
    log "node $NODE, storage $STORAGE, logs $W"
    mkdir -m 0755 "$STORAGE"

    REDIS_PORT=$(free_port); NATS_PORT=$(free_port); NATS_MON_PORT=$(free_port)
    API_PORT=$(free_port); IMAGE_PORT=$(free_port)
    API=http://127.0.0.1:$API_PORT
    IMAGE_URL=http://127.0.0.1:$IMAGE_PORT

    "$E2E_ROOT/tools/sf-creds" "$W/creds" || fail "tools/sf-creds failed"
    REDISCLI_AUTH=$(cat "$W/creds/redis_password")
    export REDISCLI_AUTH
    start_redis
    start_nats
    spawn images python3 -m http.server --bind 127.0.0.1 "$IMAGE_PORT" --directory "$BUILD/testimage"
    ensure_libvirt
    wait_until 20 redis redis_up
    wait_until 20 nats nats_up
    wait_until 20 "image server" http_up

    unset SF_AUTH_SECRET_FILE
    export SF_NODE=$NODE SF_REDIS_HOST=127.0.0.1 SF_REDIS_PORT=$REDIS_PORT \
        SF_NATS_URL=nats://127.0.0.1:$NATS_PORT SF_API_BIND=127.0.0.1 SF_API_PORT=$API_PORT \
        SF_STORAGE=$STORAGE SF_DOMAIN_TYPE=auto SF_TEMPLATES=$E2E_ROOT/templates \
        SF_ACK_WAIT=5 SF_REDRIVE_AFTER=30 SF_MESH_DEV=lo SF_MESH_IP=127.0.0.1 \
        SF_REDIS_PASSWORD_FILE=$W/creds/redis_password SF_NATS_USER=sf \
        SF_NATS_PASSWORD_FILE=$W/creds/nats_password
    unset SF_REDIS_PASSWORD SF_NATS_PASSWORD   # they would win over the files
    # sf-blob may fetch from our image server (and what the test adds), no other loopback port
    export SF_DOWNLOAD_ALLOW=127.0.0.1:$IMAGE_PORT${SF_DOWNLOAD_ALLOW:+,$SF_DOWNLOAD_ALLOW}
    SF_AUTH_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
    export SF_AUTH_SECRET
    KEY=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
    "$BUILD/sf-ctl" bootstrap-system-key deploy "$KEY" >> "$W/sf-ctl.log" 2>&1 ||
        fail "sf-ctl bootstrap-system-key failed"

    for b in "${SF_DAEMONS[@]}"; do start_daemon "$b"; done
    wait_until 30 sf-api api_up
    sleep 0.5
    for b in "${SF_DAEMONS[@]}"; do alive "${PIDS[$b]}" || fail "$b exited at start-up"; done

    TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$KEY\"}" "$API/auth" |
            json_get access_token) || fail "POST /auth gave no access_token"
    log "node up (api $API, images $IMAGE_URL)"
}

# ---- API ------------------------------------------------------------------------------

# api METHOD PATH [JSON]: sets RESP (body) and CODE (HTTP status).  Not in a subshell.
api() {
    local out
    out=$(curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
          -d "${3:-"{}"}" "$API$2") || { CODE=000; RESP=""; return 0; }
    CODE=${out##*$'\n'}
    RESP=${out%$'\n'*}
}

# api_ok METHOD PATH [JSON]: as api, but fails the test unless the status is 200.
api_ok() {
    api "$@"
    [ "$CODE" = 200 ] || fail "$1 $2 returned $CODE: $RESP"
}

# wait_state TYPE UUID TIMEOUT STATE... : poll until the object is in one of STATEs;
# an unexpected `error` fails the test.  Sets STATE (and RESP).
wait_state() {
    local type=$1 uuid=$2 t=$3 start=$SECONDS
    shift 3
    while :; do
        api GET "/$type/$uuid"
        STATE=$(json_get state <<< "$RESP" || true)
        local s
        for s in "$@"; do [ "$STATE" = "$s" ] && return 0; done
        if [ "$STATE" = error ]; then
            fail "$type $uuid went to error: $(json_get error_message <<< "$RESP" || true)"
        fi
        [ $((SECONDS - start)) -lt "$t" ] ||
            fail "timeout (${t}s) waiting for $type $uuid to be $*; it is '$STATE' ($CODE: $RESP)"
        sleep 0.5
    done
}

# shellcheck disable=SC2034  # NET_* are for the tests
create_network() {   # name -> NET_UUID, NET_VXID, NET_BLOCK, NET_ROUTER
    local n=$((RANDOM % 250 + 2))
    NET_BLOCK=10.250.$n.0/24
    NET_ROUTER=10.250.$n.1
    api_ok POST /networks "{\"netblock\": \"$NET_BLOCK\", \"name\": \"$1\", \"provide_dhcp\": true, \"provide_nat\": true}"
    NET_UUID=$(json_get uuid <<< "$RESP") || fail "no uuid in $RESP"
    NET_VXID=$(json_get vxid <<< "$RESP") || fail "no vxid in $RESP"
    NETWORKS+=("$NET_UUID $NET_VXID")
    log "network $NET_UUID ($NET_BLOCK, vxid $NET_VXID) requested"
    wait_state networks "$NET_UUID" 30 created
    log "network $NET_UUID created"
}

create_instance() {   # name network-uuid -> INST_UUID, INST_IP
    api_ok POST /instances "{\"name\": \"$1\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$IMAGE_URL/sftest.qcow2\", \"size\": 1}], \"network\": [{\"network_uuid\": \"$2\"}]}"
    INST_UUID=$(json_get uuid <<< "$RESP") || fail "no uuid in $RESP"
    INSTANCES+=("$INST_UUID")
    INST_IP=$(json_get interfaces.0.ipv4 <<< "$RESP") || fail "no interfaces[0].ipv4 in $RESP"
    log "instance $INST_UUID ($INST_IP) requested"
}

vx_names() {   # vxid -> the root-ns link names
    local x
    x=$(printf '%06x' "$1")
    echo "vxlan-$x br-vxlan-$x veth-$x-o egr-$x-o"
}

# (no grep -q after a pipe: it exits at the first match and, under pipefail, the writer's
# SIGPIPE fails the check; virsh prints a blank line after the names)
domain_exists() { "${VIRSH[@]}" list --all --name 2>/dev/null | grep -xF "sf:$1" > /dev/null; }

assert_instance_gone() {   # uuid
    ! domain_exists "$1" || fail "domain sf:$1 still defined after delete"
    [ ! -e "$STORAGE/instances/$1" ] || fail "$STORAGE/instances/$1 still exists after delete"
    log "instance $1: no domain, no files left"
}

assert_network_gone() {   # uuid vxid
    local l p
    ! ip netns list | awk '{print $1}' | grep -xF "$1" > /dev/null || fail "netns $1 still exists"
    for l in $(vx_names "$2"); do
        ! ip link show "$l" > /dev/null 2>&1 || fail "link $l still exists"
    done
    p=$(cat "$STORAGE/dhcp/$1/pid" 2>/dev/null || true)
    if [ -n "$p" ] && alive "$p" && grep -q dnsmasq "/proc/$p/comm" 2>/dev/null; then
        fail "dnsmasq $p of network $1 still running"
    fi
    log "network $1: no netns, links or dnsmasq left"
}

# ---- cleanup --------------------------------------------------------------------------

fw_rule_delete() {   # in-interface: every copy of netplumb.c's INPUT drop rule on it
    while iptables -w -D INPUT -i "$1" -m conntrack ! --ctstate ESTABLISHED,RELATED \
              -m comment --comment "sf: guests may not reach the host" -j DROP 2>/dev/null; do :; done
}

e2e_cleanup() {
    local rc=$? i name u vx l p d
    set +e
    trap - EXIT
    # 1. the sf daemons first, so nothing re-creates what is removed below
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        case ${STARTED[$i]} in sf-*) stop_pid "${STARTED[$i]}" ;; esac
    done
    # 2. domains: the recorded instances plus any with files in our storage
    if [ -d "$STORAGE/instances" ]; then
        for d in "$STORAGE"/instances/*; do [ -e "$d" ] && INSTANCES+=("$(basename "$d")"); done
    fi
    for u in "${INSTANCES[@]}"; do
        if domain_exists "$u"; then
            log "cleanup: removing domain sf:$u"
            "${VIRSH[@]}" destroy "sf:$u" > /dev/null 2>&1
            "${VIRSH[@]}" undefine "sf:$u" > /dev/null 2>&1 ||
                "${VIRSH[@]}" undefine --nvram "sf:$u" > /dev/null 2>&1
        fi
    done
    # 3. dnsmasq from our storage, netns and root-ns links of our networks
    for p in "$STORAGE"/dhcp/*/pid; do
        [ -f "$p" ] || continue
        p=$(cat "$p" 2>/dev/null)
        if alive "$p" && grep -q dnsmasq "/proc/$p/comm" 2>/dev/null; then
            log "cleanup: killing dnsmasq $p"; kill "$p"
        fi
    done
    for i in "${NETWORKS[@]}"; do
        u=${i% *}; vx=${i#* }
        if ip netns list | awk '{print $1}' | grep -xF "$u" > /dev/null; then
            log "cleanup: deleting netns $u"; ip netns del "$u"
        fi
        for l in $(vx_names "$vx"); do
            ip link show "$l" > /dev/null 2>&1 && { log "cleanup: deleting link $l"; ip link del "$l"; }
        done
    done
    if [ "$EGR_BR_EXISTED" = 0 ] && ip link show "$EGR_BR" > /dev/null 2>&1 &&
       [ -z "$(ip -o link show master "$EGR_BR" 2>/dev/null)" ]; then
        ip link del "$EGR_BR"
    fi
    # The host firewall rules of sf-network (netplumb.c), as its destroy would release them.
    if [ ${#NETWORKS[@]} -gt 0 ]; then
        ls /sys/class/net | grep '^br-vxlan-' > /dev/null || fw_rule_delete 'br-vxlan-+'
        [ -n "$(ls "/sys/class/net/$EGR_BR/brif" 2>/dev/null)" ] || fw_rule_delete "$EGR_BR"
    fi
    # 4. the rest, in reverse start order (libvirtd/virtlogd only if started here)
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        name=${STARTED[$i]}
        case $name in sf-*) ;; *) stop_pid "$name" ;; esac
    done
    rm -rf "$STORAGE"
    if [ "$rc" -eq 0 ]; then
        rm -rf "$W"
        log "PASS ($((SECONDS - T0)) s)"
    else
        log "failed (exit $rc); logs kept in $W"
    fi
    exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM
