#!/usr/bin/env bash
# Online lookups of windows read as of the request (tiles) against the same 50 features
# kept as a newest row, on one `sluice serve`, over HTTP on loopback.
#
# Usage: bash bench/serve/tiled.sh [--duration S] [--connections N] [--as-of TIME] [--keep]
#
#   --duration S     seconds of each measurement (default 10; 2 s warm-up before each)
#   --connections N  connections of the loaded measurement (default 16); each case is also
#                    measured at one connection
#   --as-of TIME     the time the tiled view is read as of (default 2013-12-31: the end of
#                    the data, so that the windows hold the planes' last months; read now,
#                    years later, every window would be empty and cheap)
#   --keep           keep the work directory
#
# Environment: SLUICE_BIN (default ~/.cache/sluice-release/release/sluice); TMPDIR.
#
# The project is the flights example plus bench/serve/project/plane_wide.toml (50 features
# per plane as a newest row, `as_of = "newest"`) and the same 50 features as a view computed
# at every event (`plane_tiled`: no `as_of`, daily tiles), whose online store keeps tiles.
# Before timing, for 200 random planes, `GET /v1/features/plane_tiled/<plane>?as_of=TIME`
# must equal a sluice training set at (plane, TIME) (windows computed at each spine row
# from the events): both are exact at a tile-aligned time. Then wrk measures (a) the
# newest-row view and (b) the tiled view, one entity x 50 features per request, with
# lookup.lua, servers pinned to the last CPU and wrk to the others.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"
duration=10
connections=16
as_of="2013-12-31"
keep=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration) duration="${2:?}"; shift 2 ;;
        --connections) connections="${2:?}"; shift 2 ;;
        --as-of) as_of="${2:?}"; shift 2 ;;
        --keep) keep=1; shift ;;
        *) echo "tiled.sh: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
log() { echo "tiled.sh: $*" >&2; }
die() { echo "tiled.sh: error: $*" >&2; exit 2; }

sluice="${SLUICE_BIN:-$HOME/.cache/sluice-release/release/sluice}"
[[ -x "$sluice" ]] || die "no sluice binary at $sluice: set SLUICE_BIN to a release build"
sluice="$(realpath "$sluice")"
case "$sluice" in */debug/*) log "WARNING: a debug build; its numbers are a lower bound" ;; esac
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
py=python3
"$py" -c 'import pyarrow' 2>/dev/null || py="${SLUICE_TEST_PYTHON:-$HOME/.cache/sluice-ci-venv/bin/python}"
"$py" -c 'import pyarrow' 2>/dev/null || die "no Python with pyarrow (set SLUICE_TEST_PYTHON)"

work="$(mktemp -d "$tmp_root/sluice-tiled-XXXXXX")"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    if [[ $keep -eq 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the project: the example, plane_wide, and plane_tiled (the same features per event) ---
proj="$work/project"
mkdir -p "$proj"
(cd "$repo/examples/flights" && tar cf - --exclude=./.sluice .) | (cd "$proj" && tar xf -)
cat "$here/project/plane_wide.toml" >>"$proj/sluice.toml"
sed -e 's/plane_wide/plane_tiled/g' \
    -e '/^as_of = "newest"$/d' -e '/^ttl = "0s"$/d' \
    -e 's/^description = .*/description = "plane_wide, computed at every landing; online windows read as of the request"\ntile = "1d"/' \
    "$here/project/plane_wide.toml" | grep -v '^#' >>"$proj/sluice.toml"
log "sluice run (the flights example, plane_wide and plane_tiled)"
"$sluice" --project "$proj" run --json >"$work/run.json" 2>"$work/run.log" \
    || { tail -30 "$work/run.log" >&2; die "sluice run failed"; }

# --- keys, and the check: online tiles = a training set at the same time ------------------
"$sluice" --project "$proj" query "SELECT DISTINCT tailnum FROM plane_wide WHERE tailnum IS NOT NULL ORDER BY tailnum" \
    --format csv | tail -n +2 >"$work/keys.txt"
log "$(wc -l <"$work/keys.txt") planes"
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cpus=$(nproc)
on_server=(); on_client=()
if [[ $cpus -ge 2 ]]; then
    on_server=(taskset -c $((cpus - 1))); on_client=(taskset -c "0-$((cpus - 2))")
fi
("${on_server[@]}" "$sluice" --project "$proj" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1) &
server_pid=$!
for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { tail "$work/serve.log" >&2; die "sluice serve did not start"; }

"$py" - "$sluice" "$proj" "$work" "$port" "$as_of" <<'EOF' || die "the tiled view's answers are wrong (above); nothing was timed"
import json, random, subprocess, sys, urllib.request
import pyarrow as pa, pyarrow.csv as pacsv, pyarrow.parquet as pq
sluice, proj, work, port, as_of = sys.argv[1:]
keys = open(f"{work}/keys.txt").read().split()
random.seed(7)
sample = random.sample(keys, min(200, len(keys)))
spine = pa.table({"tailnum": sample, "at": pa.array([f"{as_of}T00:00:00"] * len(sample)).cast(pa.timestamp("us"))})
pq.write_table(spine, f"{work}/spine.parquet")
subprocess.run([sluice, "--project", proj, "training-set", "--spine", f"{work}/spine.parquet", "--timestamp", "at",
                "--features", "plane_tiled", "--output", f"{work}/expected.parquet"], check=True, capture_output=True)
expected = pq.read_table(f"{work}/expected.parquet").to_pylist()
bad = 0
for row in expected:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/features/plane_tiled/{row['tailnum']}?as_of={as_of}") as r:
        got = json.load(r)["features"]
    for name, want in row.items():
        if name in ("tailnum", "at"):
            continue
        g = got.get(name)
        same = (g is None and want is None) or (
            g is not None and want is not None and
            (g == want or (isinstance(want, float) and abs(g - want) <= 1e-9 * max(abs(g), abs(want)))))
        if not same:
            bad += 1
            if bad <= 5:
                print(f"{row['tailnum']} {name}: online {g}, training set {want}", file=sys.stderr)
if bad:
    sys.exit(f"{bad} cells differ")
print(f"tiled.sh: {len(expected)} planes x {len(expected[0]) - 2} features: online = training set", file=sys.stderr)
EOF

# --- measurements ------------------------------------------------------------------------
threads=$(( cpus > 1 ? cpus - 1 : 1 ))
measure() {  # CASE VIEW QUERY CONNS
    local t=$threads
    (( t > $4 )) && t=$4
    "${on_client[@]}" wrk -t"$t" -c"$4" -d2s -s "$here/lookup.lua" "http://127.0.0.1:$port" -- \
        mode=sluice-get keys="$work/keys.txt" view="$2" query="$3" label="warmup" >/dev/null 2>&1 || true
    "${on_client[@]}" wrk -t"$t" -c"$4" -d"${duration}s" --timeout 10s --latency -s "$here/lookup.lua" \
        "http://127.0.0.1:$port" -- mode=sluice-get keys="$work/keys.txt" view="$2" query="$3" label="$1 c$4" \
        >"$work/wrk-$1-$4.txt" 2>&1 || { cat "$work/wrk-$1-$4.txt" >&2; die "wrk failed"; }
    grep '^RESULT ' "$work/wrk-$1-$4.txt" | sed 's/^RESULT //'
}
{
    for c in "$connections" 1; do
        measure newest plane_wide "" "$c"
        measure tiled plane_tiled "as_of=$as_of" "$c"
    done
} >"$work/results.jsonl"
"$py" - "$work/results.jsonl" "$sluice" <<'EOF'
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
version = subprocess.run([sys.argv[2], "--version"], capture_output=True, text=True).stdout.strip()
print(f"{version}; one entity x 50 features per request")
print(f"{'case':<24}{'requests/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'p99.9 ms':>10}{'errors':>8}")
for r in rows:
    print(f"{r['label']:<24}{r['rps']:>12.0f}{r['p50_us'] / 1000:>9.3f}{r['p99_us'] / 1000:>9.3f}"
          f"{r.get('p999_us', 0) / 1000:>10.3f}{r['non200'] + r['bad_body'] + r['timeouts']:>8}")
tiled_1 = [r for r in rows if r["label"] == "tiled c1"]
if tiled_1:
    print("bar (p99 under 1 ms, one connection):", "met" if tiled_1[0]["p99_us"] < 1000 else "NOT met")
EOF
