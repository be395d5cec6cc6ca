#!/usr/bin/env bash
# make bench, CLI part: how long `sf --help` and `sf version` take to start, print and exit
# (no server: both are offline), beside `curl --version` measured the same way in the same
# run as the floor (curl links the same libcurl, so it pays the same dynamic loading).
# tools/bench/execloop.c runs the three in turn, fork + exec + wait with no shell between,
# stdout to /dev/null, BENCH_CLI_WARMUP (20) warm-up rounds then BENCH_CLI_RUNS (300)
# measured ones; the value is the median.
#   part-cli.sh OUTDIR  -> OUTDIR/cli.json
OUT=${1:?usage: part-cli.sh OUTDIR}
SF_SRC=${SF_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$SF_SRC/build}
RUNS=${BENCH_CLI_RUNS:-300}
WARMUP=${BENCH_CLI_WARMUP:-20}
set -euo pipefail
LOOP=$BUILD/bench/execloop
[ -x "$LOOP" ] || { echo "$LOOP is missing (make bench builds it)"; exit 1; }
[ -x "$BUILD/sf" ] || { echo "$BUILD/sf is missing"; exit 1; }
CURL=$(command -v curl) || { echo "curl is not installed"; exit 1; }
mkdir -p "$OUT"
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
env -u SHAKENFIST_API_URL HOME=/nonexistent "$LOOP" -n "$RUNS" -w "$WARMUP" \
    -- "$BUILD/sf" --help -- "$CURL" --version -- "$BUILD/sf" version > "$RAW"
echo "execloop: $(cat "$RAW")"
python3 - "$RAW" "$OUT/cli.json" <<'PY'
import json, sys
help_, curl, version = json.load(open(sys.argv[1]))
floor = curl["median_ms"]
def metric(r):
    v = r["median_ms"]
    return {"value": round(v, 3), "unit": "ms", "floor": round(floor, 3),
            "ratio": round(v / floor, 3) if floor else None, "target": "< 10 ms", "met": v < 10}
out = {"cli_help_ms": metric(help_), "cli_version_ms": metric(version)}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print("sf --help %.2f ms (p90 %.2f), sf version %.2f ms, curl --version %.2f ms (median of %d)"
      % (help_["median_ms"], help_["p90_ms"], version["median_ms"], floor, help_["runs"]))
PY
