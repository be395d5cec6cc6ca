#!/usr/bin/env bash
# End-to-end: GET /events/stream on a whole node (tests/tools/sse_check.py does the
# checks): an instance's state and power changes arrive in order, each within 1 s; a
# reconnect with Last-Event-ID gets exactly what was missed (from memory, and from
# JetStream for ids older than the hub); another namespace sees none of it; filters;
# the subscriber cap; a non-reading client is dropped while the others keep receiving;
# a purged id gives an error event; deleting the key ends its stream.
source "$(dirname "$0")/lib.sh"

# Small limits so that each one is reached quickly.
export SF_STREAM_HEARTBEAT=2 SF_STREAM_BACKLOG=100 SF_STREAM_WRITE_TIMEOUT=5 SF_STREAM_MAX_SUBSCRIBERS=10 \
    SF_STREAM_RING=64
e2e_setup

NS2=e2e-other-$E2E_ID
NS2_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
api_ok POST /auth/namespaces "{\"namespace\": \"$NS2\", \"key_name\": \"k\", \"key\": \"$NS2_KEY\"}"
NS2_TOKEN=$(curl -s -X POST -d "{\"namespace\": \"$NS2\", \"key\": \"$NS2_KEY\"}" "$API/auth" |
            json_get access_token) || fail "no token for $NS2"

API=$API TOKEN=$TOKEN NS2=$NS2 NS2_TOKEN=$NS2_TOKEN IMAGE_URL=$IMAGE_URL NATS_PORT=$NATS_PORT \
    NATS_USER=sf NATS_PASSWORD_FILE=$W/creds/nats_password API_LOG=$W/sf-api.log INST_FILE=$W/instance \
    python3 "$E2E_ROOT/tests/tools/sse_check.py" || fail "event stream checks failed"

# The instance is deleted by the checks; nothing of it may be left.
INSTANCES+=("$(cat "$W/instance")")
assert_instance_gone "${INSTANCES[-1]}"
