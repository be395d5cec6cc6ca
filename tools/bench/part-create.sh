#!/usr/bin/env bash
# make bench, create part: (P1) POST /instances -> QEMU running beside raw libvirt
# define+start of the same domain XML, and (P4) the sf daemons idle: summed RSS and Redis
# commands per second over a minute without work.  A whole node as the e2e tests have it
# (tests/e2e/lib.sh: its own redis, nats, image server, the four daemons; the machine's
# libvirtd with QEMU, TCG), everything stopped by PID on exit.
#   part-create.sh OUTDIR  -> OUTDIR/create.json
# Env: BUILD, SF_SRC; BENCH_CREATE_REPS (5), BENCH_IDLE_SECONDS (60).
OUT=${1:?usage: part-create.sh OUTDIR}
SF_SRC=${SF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
export SF_E2E_BUILD=${BUILD:-$SF_SRC/build}
# shellcheck source=../../tests/e2e/lib.sh
. "$SF_SRC/tests/e2e/lib.sh"

REPS=${BENCH_CREATE_REPS:-5}
IDLE=${BENCH_IDLE_SECONDS:-60}
CREATERUN=$BUILD/bench/createrun
[ -x "$CREATERUN" ] || fail "$CREATERUN is missing (make bench builds it)"
[ -f "$BUILD/testimage/sftest.qcow2" ] || make -C "$SF_SRC" testimage > "$W/testimage.log" 2>&1 ||
    fail "make testimage failed"
mkdir -p "$OUT"

e2e_setup
create_network "bench-net-$E2E_ID"
mkdir -m 0755 "$W/raw"
python3 - "$IMAGE_URL" "$NET_UUID" > "$W/body.json" <<'EOF'
import json, sys
print(json.dumps({"name": "bench", "cpus": 1, "memory": 256,
                  "disk": [{"base": sys.argv[1] + "/sftest.qcow2", "size": 1}],
                  "network": [{"network_uuid": sys.argv[2]}]}))
EOF

# ---- P1 ----------------------------------------------------------------------------------
# One round first: the image is downloaded once and cached on the node; the measured rounds
# then find it cached (one conditional request each) and the network already plumbed.
"$CREATERUN" -a "$API" -t "$TOKEN" -b "$W/body.json" -d "$W/raw" -s "$STORAGE" -n 1 \
    > "$W/warm.json" 2> "$W/warm.err" || fail "warm-up create failed: $(cat "$W/warm.err")"
log "warm-up: $(cat "$W/warm.json")"
sed -i 's/"bench"/"benchm"/' "$W/body.json"
"$CREATERUN" -a "$API" -t "$TOKEN" -b "$W/body.json" -d "$W/raw" -s "$STORAGE" -n "$REPS" \
    > "$W/create.json" 2> "$W/create.err" || fail "createrun failed: $(cat "$W/create.err")"
cat "$W/create.err"
log "P1: $(cat "$W/create.json")"
# The per-step durations of the last create, from its status events (where the time goes).
uuid=$(sed -n 's/.*(instance \(.*\))$/\1/p' "$W/create.err" | tail -n 1)
if [ -n "$uuid" ]; then
    api GET "/instances/$uuid/events" '{"limit": 100}'
    python3 -c '
import json, sys
ev = sorted(json.loads(sys.argv[1]), key=lambda e: e["timestamp"])
t0 = ev[0]["timestamp"] if ev else 0
for e in ev:
    print("  +%7.3f s  %-8s %-40s %s" % (e["timestamp"] - t0, e["type"], e["message"][:40],
          "" if e.get("duration") is None else "(%.3f s)" % e["duration"]))' "$RESP" || true
fi

# ---- P4 ----------------------------------------------------------------------------------
# Nothing to do now (the network stays, as on any node); a minute later, the four daemons'
# RSS and what Redis saw meanwhile.  Each redis-cli run is AUTH + INFO: 2 of the commands.
rinfo() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info "$1"; }
sleep 5
rinfo commandstats > "$W/cs0"
c0=$(rinfo stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
log "idle for $IDLE s"
sleep "$IDLE"
c1=$(rinfo stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
rinfo commandstats > "$W/cs1"
rss_kb=0
for d in "${SF_DAEMONS[@]}"; do
    kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/${PIDS[$d]}/status")
    log "idle RSS $d: $kb kB, $(grep -c . "/proc/${PIDS[$d]}/maps") maps, $(ls "/proc/${PIDS[$d]}/task" | wc -l) threads"
    rss_kb=$((rss_kb + kb))
done
python3 - "$W/cs0" "$W/cs1" <<'EOF'
import re, sys
def rd(p):
    d = {}
    for l in open(p):
        m = re.match(r"cmdstat_(\S+):calls=(\d+)", l)
        if m:
            d[m.group(1)] = int(m.group(2))
    return d
a, b = rd(sys.argv[1]), rd(sys.argv[2])
for k in sorted(b, key=lambda k: a.get(k, 0) - b[k]):
    if b[k] - a.get(k, 0):
        print("  redis idle: %-12s %d" % (k, b[k] - a.get(k, 0)))
EOF

python3 - "$W/create.json" "$OUT/create.json" "$rss_kb" "$c0" "$c1" "$IDLE" "$REPS" <<'EOF' ||
import json, sys
c = json.load(open(sys.argv[1]))
rss_mb = int(sys.argv[3]) / 1024
ops = (int(sys.argv[5]) - int(sys.argv[4]) - 2) / float(sys.argv[6])
sf, raw, cr = c["sf_running_median_ms"], c["raw_running_median_ms"], c["sf_created_median_ms"]
ratio = sf / raw
reps = sys.argv[7]
m = {
    "create_to_running_ratio": {"value": round(ratio, 3), "unit": "x", "floor": None, "ratio": None,
                                "target": "<= 1.15", "met": ratio <= 1.15,
                                "note": "median of %s: POST /instances -> domain STARTED / raw define+start" % reps},
    "create_to_running_ms": {"value": sf, "unit": "ms", "floor": raw, "ratio": round(ratio, 3),
                             "target": "", "met": None,
                             "note": "POST /instances -> libvirt STARTED event; floor: raw define+start of the same XML"},
    "create_to_created_ms": {"value": cr, "unit": "ms", "floor": None, "ratio": None, "target": "", "met": None,
                             "note": "POST /instances -> GET says created"},
    "idle_rss_mb": {"value": round(rss_mb, 1), "unit": "MB", "floor": None, "ratio": None,
                    "target": "< 30", "met": rss_mb < 30,
                    "note": "summed VmRSS of sf-api, sf-compute, sf-network, sf-blob after %s s idle" % sys.argv[6]},
    "idle_redis_ops_per_s": {"value": round(ops, 2), "unit": "cmd/s", "floor": None, "ratio": None,
                             "target": "< 5", "met": ops < 5,
                             "note": "total_commands_processed delta over the idle minute, minus the bench's own"},
}
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
    fail "could not write $OUT/create.json"
log "wrote $OUT/create.json"
