#!/usr/bin/env bash
# The bus loses messages: nats-server 2.9 fsyncs lazily, so an acknowledged publish can
# vanish on power loss.  Redis is the truth: the API answers at once while the bus is
# down (the intent is recorded, not lost), and when the bus comes back -- even with its
# whole store gone (streams, consumers, messages) -- the workers recreate what they need
# and re-publish the pending intents from Redis, so every object still converges.
source "$(dirname "$0")/lib.sh"

e2e_setup

# 1. Bus down: the API still answers, fast, and records the network.
kill -9 "${PIDS[nats]}"; wait "${PIDS[nats]}" 2>/dev/null || true
t0=$(date +%s%N)
n=$((RANDOM % 250 + 2))
api_ok POST /networks "{\"netblock\": \"10.250.$n.0/24\", \"name\": \"e2e-loss-$E2E_ID\", \"provide_dhcp\": true, \"provide_nat\": true}"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$ms" -lt 3000 ] || fail "POST /networks took $ms ms with the bus down (want < 3 s)"
NET=$(json_get uuid <<< "$RESP"); VX=$(json_get vxid <<< "$RESP")
NETWORKS+=("$NET $VX")
log "bus down: POST /networks answered in $ms ms, network $NET recorded"

# 2. The bus comes back with its store wiped: streams, durable consumers, messages gone.
rm -rf "$W/js"
start_nats
wait_until 20 nats nats_up
wait_state networks "$NET" 60 created
log "network $NET created after the bus came back empty"

# 3. Down again while an instance is created; back with its store intact.
kill -9 "${PIDS[nats]}"; wait "${PIDS[nats]}" 2>/dev/null || true
create_instance "e2e-loss-$E2E_ID" "$NET"
VM=$INST_UUID
sleep 1
start_nats
wait_until 20 nats nats_up
wait_state instances "$VM" 90 created
log "instance $VM created after the outage"
for d in "${SF_DAEMONS[@]}"; do alive "${PIDS[$d]}" || fail "$d died during the bus outage"; done

api_ok DELETE "/instances/$VM"
wait_state instances "$VM" 60 deleted
assert_instance_gone "$VM"
api_ok DELETE "/networks/$NET"
wait_state networks "$NET" 60 deleted
assert_network_gone "$NET" "$VX"
