#!/usr/bin/env bash
# make bench: runs every tools/bench/part-*.sh in name order (each as `part-X.sh OUTDIR`
# with BUILD and SF_SRC set), merges their OUTDIR/<X>.json into build/bench/results.json
# and prints a table.  Exits non-zero only if a part fails to run; a missed target is
# printed, not a failure.  BENCH_PARTS="api sse" runs only those parts.
set -uo pipefail
SF_SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$SF_SRC/build}
case $BUILD in /*) ;; *) BUILD=$SF_SRC/$BUILD ;; esac
export SF_SRC BUILD
OUT=$BUILD/bench/parts
rm -rf "$OUT"
mkdir -p "$OUT"

failed=()
for part in "$SF_SRC"/tools/bench/part-*.sh; do
    [ -f "$part" ] || continue
    name=$(basename "$part" .sh); name=${name#part-}
    if [ -n "${BENCH_PARTS:-}" ] && ! [[ " $BENCH_PARTS " == *" $name "* ]]; then
        continue
    fi
    echo "== bench part $name"
    start=$SECONDS
    if bash "$part" "$OUT" > "$OUT/$name.log" 2>&1 && [ -s "$OUT/$name.json" ]; then
        echo "   done in $((SECONDS - start)) s (log: $OUT/$name.log)"
    else
        echo "   FAILED after $((SECONDS - start)) s; last lines of $OUT/$name.log:"
        tail -n 30 "$OUT/$name.log" | sed 's/^/   | /'
        failed+=("$name")
    fi
done

python3 - "$OUT" "$BUILD/bench/results.json" <<'EOF' || failed+=("merge")
import glob, json, os, sys
out, dest = sys.argv[1], sys.argv[2]
merged = {}
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    for k, v in json.load(open(f)).items():
        merged[k] = {"value": v.get("value"), "unit": v.get("unit"), "floor": v.get("floor"),
                     "ratio": v.get("ratio"), "target": v.get("target"), "met": v.get("met")}
tmp = dest + ".tmp"
json.dump(merged, open(tmp, "w"), indent=1, sort_keys=True)
os.replace(tmp, dest)

def num(x):
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    return ("%.3f" % x) if abs(x) < 100 else ("%.0f" % x)

rows = [("metric", "value", "unit", "floor", "ratio", "target", "met")]
for k in sorted(merged):
    v = merged[k]
    met = {True: "yes", False: "NO", None: "-"}[v["met"]]
    rows.append((k, num(v["value"]), v["unit"] or "", num(v["floor"]), num(v["ratio"]), v["target"] or "", met))
w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  ".join(c.rjust(w[i]) if i in (1, 3, 4) else c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
print("results: %s" % dest)
EOF

if [ ${#failed[@]} -gt 0 ]; then
    echo "bench parts that failed to run: ${failed[*]}"
    exit 1
fi
