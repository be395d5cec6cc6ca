#!/usr/bin/env bash
# `make run` (tools/sf-run) on free ports and a temporary layout: it generates the Redis and
# NATS credentials (mode 0600, next to auth_secret), Redis answers NOAUTH and NATS refuses a
# client without them, no secret is on a command line or in a daemon's environment, the
# daemons use them (a network goes through API -> Redis -> NATS -> sf-network and back),
# and a second start re-uses the same credentials.  Start-up and stop times are logged.
source "$(dirname "$0")/lib.sh"

R=$W/run
[ -f "$BUILD/testimage/sftest.qcow2" ] || fail "build/testimage/sftest.qcow2 is missing (make testimage)"
ensure_libvirt
mkdir -m 0755 "$STORAGE"
REDIS_PORT=$(free_port); NATS_PORT=$(free_port); NATS_MON_PORT=$(free_port)
API_PORT=$(free_port); IMAGE_PORT=$(free_port)
API=http://127.0.0.1:$API_PORT
unset SF_AUTH_SECRET SF_AUTH_SECRET_FILE SF_REDIS_PASSWORD SF_NATS_PASSWORD REDISCLI_AUTH
export SF_RUN_STATE_DIR=$R/state SF_RUN_ETC_DIR=$R/etc SF_RUN_LOG_DIR=$R/log \
    SF_RUN_PID_DIR=$R/pid SF_RUN_ENV_FILE=$R/sf.env SF_RUN_NATS_PORT=$NATS_PORT \
    SF_RUN_NATS_MONITOR_PORT=$NATS_MON_PORT SF_RUN_REDIS_PORT=$REDIS_PORT SF_API_PORT=$API_PORT \
    SF_RUN_IMAGE_PORT=$IMAGE_PORT SF_STORAGE=$STORAGE SF_NODE=$NODE SF_MESH_DEV=lo \
    SF_MESH_IP=127.0.0.1 SF_DOMAIN_TYPE=auto

run_up() { grep -q 'supervising' "$W/sf-run.log" 2>/dev/null && api_up; }

start_sf_run() {   # -> start-up seconds in UP_S
    local t0
    : > "$W/sf-run.log"
    t0=$(date +%s%N)
    spawn sf-run "$E2E_ROOT/tools/sf-run"
    until run_up; do
        alive "${PIDS[sf-run]}" || fail "sf-run exited during start-up"
        [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt 120 ] || fail "sf-run not up in 120 s"
        sleep 0.1
    done
    UP_S=$(python3 -c "print(round(($(date +%s%N) - $t0) / 1e9, 2))")
}

stop_sf_run() {
    local t0 p
    t0=$(date +%s%N)
    kill -TERM "${PIDS[sf-run]}"
    for _ in $(seq 600); do alive "${PIDS[sf-run]}" || break; sleep 0.1; done
    alive "${PIDS[sf-run]}" && fail "sf-run did not stop in 60 s"
    wait "${PIDS[sf-run]}" 2>/dev/null || true
    for p in "$R"/pid/*.pid; do
        [ -f "$p" ] && alive "$(cat "$p")" && fail "$(basename "$p" .pid) still running after sf-run stopped"
    done
    log "sf-run stopped in $(python3 -c "print(round(($(date +%s%N) - $t0) / 1e9, 2))") s"
}

# NATS protocol by hand: the server's answer to a CONNECT without credentials.
nats_anonymous() {
    python3 - "$NATS_PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
f = s.makefile("rb")
info = f.readline().decode()
s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
print(info.strip()[:4], '"auth_required":true' in info, f.readline().decode().strip())
EOF
}

api_token() {
    local key
    key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$R/etc/shakenfist.json")
    TOKEN=$(curl -s -X POST -d "{\"namespace\": \"system\", \"key\": \"$key\"}" "$API/auth" |
            json_get access_token) || fail "POST /auth gave no access_token"
}

# 1. First start: credentials generated, servers locked.
start_sf_run
log "sf-run up in $UP_S s (first start)"
for f in redis_password nats_password redis.conf nats.conf auth_secret shakenfist.json; do
    [ "$(stat -c %a "$R/etc/$f")" = 600 ] || fail "$R/etc/$f is mode $(stat -c %a "$R/etc/$f"), want 600"
done
RPW=$(cat "$R/etc/redis_password"); NPW=$(cat "$R/etc/nats_password")
[ ${#RPW} -ge 32 ] && [ ${#NPW} -ge 32 ] || fail "passwords shorter than 32 characters"

out=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1 || true)
[[ "$out" == NOAUTH* ]] || fail "redis-cli without the password got '$out', want NOAUTH"
out=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" keys '*' 2>&1 || true)
[[ "$out" == NOAUTH* ]] || fail "redis-cli keys without the password got '$out', want NOAUTH"
[ "$(REDISCLI_AUTH=$RPW redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping)" = PONG ] ||
    fail "redis-cli with the password does not get PONG"
log "redis: NOAUTH without the password, PONG with it"
out=$(nats_anonymous)
[ "$out" = "INFO True -ERR 'Authorization Violation'" ] ||
    fail "a NATS client without credentials got '$out', want an Authorization Violation"
log "nats: anonymous CONNECT refused ($out)"

# No secret on a command line, in a daemon's environment or in the env file.
for p in "$R"/pid/*.pid; do
    pid=$(cat "$p")
    alive "$pid" || continue
    for s in "$RPW" "$NPW"; do
        ! tr '\0' '\n' < "/proc/$pid/cmdline" | grep -F "$s" > /dev/null ||
            fail "a password is on the command line of $(basename "$p" .pid)"
        ! tr '\0' '\n' < "/proc/$pid/environ" | grep -F "$s" > /dev/null ||
            fail "a password is in the environment of $(basename "$p" .pid)"
    done
done
! grep -qF -e "$RPW" -e "$NPW" "$R/sf.env" || fail "$R/sf.env holds a password"
grep -q "SF_REDIS_PASSWORD_FILE='$R/etc/redis_password'" "$R/sf.env" ||
    fail "$R/sf.env does not name the redis password file"
grep -q 'redis_password' "$W/sf-run.log" || fail "sf-run does not say where the credentials are"

# The banner says how to use the sf client against this node; that very command works.
SF_CMD=$(sed -n 's/^ *sf CLI: *//p' "$W/sf-run.log" | head -1)
[[ "$SF_CMD" == "source $R/etc/sfrc && $BUILD/sf instance list" ]] ||
    fail "sf-run does not print how to use sf (got '$SF_CMD')"
# (Until the instance group has its list command, the same line with `namespace list`.)
if ! "$BUILD/sf" __complete 1 instance list | grep -qx list; then
    SF_CMD=${SF_CMD/instance list/namespace list}
    log "this sf has no 'instance list' yet: running '$SF_CMD'"
fi
out=$(env -u SHAKENFIST_API_URL -u SHAKENFIST_NAMESPACE -u SHAKENFIST_KEY HOME=$W bash -c "$SF_CMD" 2>&1) ||
    fail "the printed sf command failed: $out"
head -1 <<< "$out" | grep '^+-' > /dev/null || fail "the printed sf command printed no table: $out"
log "sf-run's sf command works: $SF_CMD"

# The daemons work with them: API -> Redis -> NATS -> sf-network -> Redis.
api_token
n=$((RANDOM % 250 + 2))
api_ok POST /networks "{\"netblock\": \"10.250.$n.0/24\", \"name\": \"e2e-run-$E2E_ID\", \"provide_dhcp\": true, \"provide_nat\": false}"
NET=$(json_get uuid <<< "$RESP"); VX=$(json_get vxid <<< "$RESP")
NETWORKS+=("$NET $VX")
wait_state networks "$NET" 60 created
# An instance from sf-run's own image server (loopback: on its download allow list), as
# the README shows: sf-blob and sf-compute work with the credentials too.
IMAGE_URL=http://127.0.0.1:$IMAGE_PORT
create_instance "e2e-run-$E2E_ID" "$NET"
wait_state instances "$INST_UUID" 120 created
api_ok DELETE "/instances/$INST_UUID"
wait_state instances "$INST_UUID" 60 deleted
assert_instance_gone "$INST_UUID"
api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
log "network $NET and instance $INST_UUID created and deleted through the bus"
stop_sf_run

# 2. Second start: the same credentials, and everything answers again.
start_sf_run
log "sf-run up in $UP_S s (second start)"
[ "$(cat "$R/etc/redis_password")" = "$RPW" ] || fail "the redis password changed on restart"
[ "$(cat "$R/etc/nats_password")" = "$NPW" ] || fail "the nats password changed on restart"
out=$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1 || true)
[[ "$out" == NOAUTH* ]] || fail "after restart, redis-cli without the password got '$out'"
api_token
api_ok GET "/networks/$NET"
log "restart: same credentials, API answers"
stop_sf_run
