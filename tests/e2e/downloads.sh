#!/usr/bin/env bash
# Downloads are bounded (issue 5 item 2), against a misbehaving image server
# (tests/tools/badhttp.py) next to the normal one:
#   - an instance whose image trickles in does not delay another tenant's instance from
#     another server: the second reaches `created` while the first is still downloading
#     (sf-blob runs several downloads at once);
#   - an endless body stops at SF_DOWNLOAD_MAX_BYTES, a Content-Length over it is refused:
#     instance `error` with the reason, no blob or .partial file left;
#   - the API refuses a literal denied address (metadata service, the node's Redis port)
#     with 400; a name resolving to a denied address, and a redirect to one, are refused
#     by sf-blob at connect time (instance `error` with the reason);
#   - a server slower than SF_DOWNLOAD_TIMEOUT: instance `error`.
# STEPS="2 3" runs only some of the four parts (to show each one failing on old code).
source "$(dirname "$0")/lib.sh"
want() { [[ " ${STEPS:-1 2 3 4} " == *" $1 "* ]]; }

BAD_PORT=$(free_port)
BAD=http://127.0.0.1:$BAD_PORT
export SF_DOWNLOAD_ALLOW=127.0.0.1:$BAD_PORT SF_DOWNLOAD_MAX_BYTES=$((64 << 20)) SF_BLOB_CONCURRENCY=4
spawn badhttp python3 "$E2E_ROOT/tests/tools/badhttp.py" "$BAD_PORT"
e2e_setup
bad_up() { curl -s -o /dev/null -w '%{http_code}' "$BAD/nope" | grep -q 404; }
wait_until 20 "bad image server" bad_up

post_instance() {   # name base-url -> INST_UUID (200 expected)
    api_ok POST /instances "{\"name\": \"$1\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$2\", \"size\": 1}]}"
    INST_UUID=$(json_get uuid <<< "$RESP") || fail "no uuid in $RESP"
    INSTANCES+=("$INST_UUID")
    log "instance $INST_UUID from $2 requested"
}

expect_error() {   # uuid timeout message-substring
    local start=$SECONDS s m
    while :; do
        api GET "/instances/$1"
        s=$(json_get state <<< "$RESP" || true)
        # (*-error: the failure handler could not finish, e.g. libvirtd was restarted by
        # another test; the message is what this test checks)
        case $s in error|*-error) break ;; esac
        case $s in created|deleted) fail "instance $1 is $s, expected error" ;; esac
        [ $((SECONDS - start)) -lt "$2" ] || fail "instance $1 not in error after $2 s (state '$s')"
        sleep 0.5
    done
    m=$(json_get error_message <<< "$RESP" || true)
    log "instance $1: error after $((SECONDS - start)) s: $m"
    [[ $m == *"$3"* ]] || fail "error message of $1 lacks '$3': $m"
}

# Only the good image's blob (if step 1 ran), and the .partial of a trickle still running.
assert_blob_files() {   # number of .partial files expected
    local blobs partials want_blobs=0
    want 1 && want_blobs=1
    blobs=$(find "$STORAGE/blobs" -type f ! -name '*.partial' 2>/dev/null | wc -l)
    partials=$(find "$STORAGE" -name '*.partial' | wc -l)
    [ "$blobs" = "$want_blobs" ] && [ "$partials" = "$1" ] ||
        { find "$STORAGE/blobs" -type f -ls; fail "expected $want_blobs blob(s) and $1 .partial file(s)"; }
}

# 1. one slow server does not delay another tenant's create.
if want 1; then
post_instance "e2e-slow-$E2E_ID" "$BAD/trickle"
SLOW=$INST_UUID
wait_until 30 "the trickling download to start" grep -q 'GET /trickle' "$W/badhttp.log"
t0=$SECONDS
post_instance "e2e-fast-$E2E_ID" "$IMAGE_URL/sftest.qcow2"
FAST=$INST_UUID
wait_state instances "$FAST" 180 created
log "instance $FAST created in $((SECONDS - t0)) s while $SLOW downloads"
api GET "/instances/$SLOW"
s=$(json_get state <<< "$RESP" || true)
case $s in initial|preflight) ;; *) fail "slow instance $SLOW is '$s', expected still waiting for its image" ;; esac
! grep -q '/trickle: client gone' "$W/badhttp.log" || fail "the trickling download stopped early"
fi

# 2. size: an endless body stops at the cap; a Content-Length over the cap is refused.
if want 2; then
post_instance "e2e-endless-$E2E_ID" "$BAD/endless"
expect_error "$INST_UUID" 120 "larger than the limit of $((64 << 20)) bytes"
post_instance "e2e-huge-$E2E_ID" "$BAD/huge"
expect_error "$INST_UUID" 60 "larger than the limit"
assert_blob_files "$(want 1 && echo 1 || echo 0)"
log "no partial or blob file left by the refused downloads"
fi

# 3. destinations: literal addresses at the API, names and redirects at connect time.
if want 3; then
for base in "http://169.254.169.254/x" "http://127.0.0.1:$REDIS_PORT/" "http://[::1]:$NATS_PORT/x" \
            "http://127.1:$API_PORT/"; do
    api POST /instances "{\"name\": \"e2e-deny-$E2E_ID\", \"cpus\": 1, \"memory\": 256, \"disk\": [{\"base\": \"$base\", \"size\": 1}]}"
    [ "$CODE" = 400 ] || fail "POST with base $base returned $CODE: $RESP"
    [ "$(json_get status <<< "$RESP")" = 400 ] || fail "no upstream envelope: $RESP"
    [[ $(json_get error <<< "$RESP") == *"is not allowed"* ]] || fail "unclear message: $RESP"
    log "base $base: 400 $(json_get error <<< "$RESP")"
done
post_instance "e2e-name-$E2E_ID" "http://localhost:$REDIS_PORT/x"
expect_error "$INST_UUID" 60 ":$REDIS_PORT is not allowed"
post_instance "e2e-redir-$E2E_ID" "$BAD/redirect?to=http://localhost:$API_PORT/x"
expect_error "$INST_UUID" 60 ":$API_PORT is not allowed"
fi

# 4. time: sf-blob restarted with a 5 s limit; the trickling download now ends in error.
if want 4; then
want 1 || { post_instance "e2e-slow-$E2E_ID" "$BAD/trickle"; SLOW=$INST_UUID; }
stop_pid sf-blob
SF_DOWNLOAD_TIMEOUT=5 spawn sf-blob "$BUILD/sf-blob"
expect_error "$SLOW" 90 "took longer than the limit of 5 s"
assert_blob_files 0
log "the timed-out download left no file"
fi
