#!/usr/bin/env bash
# Online lookups over HTTP on loopback: `sluice serve` against Feast's Python feature
# server (SQLite online store) on the same 50-feature view, with Redis GET as the floor.
#
# Usage: bash bench/serve/run.sh [--quick] [options...]
#
#   --quick             a smoke run: 3 s per measurement, 1 s warm-ups, 20,000 Redis requests
#   --duration S        seconds of each loaded measurement (default 20)
#   --latency-duration S  seconds of each one-connection measurement (default 10)
#   --warmup S          seconds of the unrecorded run before each case (default 3)
#   --connections N     connections of the loaded measurements, wrk and redis-benchmark (16)
#   --threads N         wrk threads (default: the client's CPUs)
#   --no-pin            do not pin: servers and load generators share every CPU
#   --server-cpus LIST  the servers' CPUs (taskset list; default: the last CPU)
#   --client-cpus LIST  the load generators' CPUs (default: every other CPU)
#   --feast-workers N   Feast's worker processes (default 1, one per server CPU is fair)
#   --wait-quiet S      before each case, wait up to S seconds for the machine to be idle
#                       (under 10% busy; e.g. for a build to finish); default: do not wait
#   --with-key          create a reader key (`sluice keys create`) and send it with every
#                       sluice request (measures the authenticated path)
#   --peers-only        Feast and Redis only; the view is computed by reference_view.py
#   --require-bar       exit 3 when the SPEC bar is not met
#   --json-out FILE     every result as one JSON document
#   --keep              keep the work directory (project, Feast repo, logs, wrk outputs)
#
# Environment:
#   SLUICE_BIN   the sluice binary (default ~/.cache/sluice-release/release/sluice, then
#                ~/.cache/sluice-target/debug/sluice); nothing is built here
#   TMPDIR       where the virtualenv (reused) and the work directory (removed) live
#
# The cases, each measured at --connections connections (throughput and latency under
# load) and at one connection (latency unloaded), after a warm-up:
#   (a) sluice  GET  /v1/features/plane_wide/<tailnum>      1 entity x 50 features
#   (b) sluice  POST /v1/features                           100 entities x 50 features
#   (c) Feast   POST /get-online-features                   1 entity x 50 features
#   (d) Feast   POST /get-online-features                   100 entities x 50 features
#   (e) Redis   GET of one value the size of an entity's 50 features as JSON (redis-benchmark)
# Keys are random real entities (lookup.lua); every response must be 200 and hold the
# answer (no null view, no NOT_FOUND), and both servers must first return the same 50
# values as the view's rows for a sample of entities (check.py), or nothing is timed.
#
# Requires apt-get (wrk, redis-tools, redis-server, prometheus for promtool are installed
# when missing) and python3 with venv; Feast, pyarrow and pandas come from PyPI into
# ${TMPDIR:-/tmp}/sluice-serve-venv, made on first use and reused.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

duration=20
lat_duration=10
warmup=3
connections=16
threads=""
redis_n=200000
pin=1
server_cpus=""
client_cpus=""
feast_workers=1
wait_quiet=0
with_key=0
peers_only=0
require_bar=0
json_out=""
keep=0
view="plane_wide"
entity="tailnum"
timestamp="landed_at"
batch=100

log() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: error: $*" >&2; exit 2; }
num() { [[ "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] || die "$1 needs a positive whole number, not '$2'"; echo "$2"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) duration=3; lat_duration=2; warmup=1; redis_n=20000; shift ;;
        --duration) duration=$(num "$1" "${2:-}"); shift 2 ;;
        --latency-duration) lat_duration=$(num "$1" "${2:-}"); shift 2 ;;
        --warmup) warmup=$(num "$1" "${2:-}"); shift 2 ;;
        --connections) connections=$(num "$1" "${2:-}"); shift 2 ;;
        --threads) threads=$(num "$1" "${2:-}"); shift 2 ;;
        --no-pin) pin=0; shift ;;
        --server-cpus) server_cpus="${2:?--server-cpus needs a CPU list}"; shift 2 ;;
        --client-cpus) client_cpus="${2:?--client-cpus needs a CPU list}"; shift 2 ;;
        --feast-workers) feast_workers=$(num "$1" "${2:-}"); shift 2 ;;
        --wait-quiet) wait_quiet=$(num "$1" "${2:-}"); shift 2 ;;
        --with-key) with_key=1; shift ;;
        --peers-only) peers_only=1; shift ;;
        --require-bar) require_bar=1; shift ;;
        --json-out) json_out="$(realpath -m "${2:?--json-out needs a file}")"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# --- sluice: the binary, which must have `serve` ----------------------------------
sluice=""
if [[ $peers_only -eq 0 ]]; then
    if [[ -n "${SLUICE_BIN:-}" ]]; then
        sluice="$SLUICE_BIN"
    elif [[ -x "$HOME/.cache/sluice-release/release/sluice" ]]; then
        sluice="$HOME/.cache/sluice-release/release/sluice"
    elif [[ -x "$HOME/.cache/sluice-target/debug/sluice" ]]; then
        sluice="$HOME/.cache/sluice-target/debug/sluice"
    else
        die "no sluice binary: set SLUICE_BIN (e.g. a release build: cargo build --release -p sluice-cli), or run with --peers-only"
    fi
    [[ -x "$sluice" ]] || die "sluice binary $sluice is missing or not executable"
    sluice="$(realpath "$sluice")"
    if ! "$sluice" serve --help >/dev/null 2>&1; then
        die "$sluice has no 'serve' command ('sluice serve --help' failed); build a newer sluice, or run with --peers-only"
    fi
    case "$sluice" in
        */debug/*) log "WARNING: $sluice is a debug build; its numbers are a lower bound, not sluice's speed" ;;
    esac
fi

# --- tools: wrk, redis-benchmark, redis-server, promtool (apt-get when missing) -------
apt_install() {
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || die "$* missing, and installing needs root or sudo: apt-get install $*"
        sudo=(sudo)
    fi
    log "installing $* with apt-get"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        "${sudo[@]}" apt-get update >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 \
            || die "apt-get install $* failed"
    fi
}
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v redis-benchmark >/dev/null && command -v redis-cli >/dev/null || need+=(redis-tools)
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null && command -v setsid >/dev/null || need+=(util-linux)
if [[ ${#need[@]} -gt 0 ]]; then
    apt_install "${need[@]}"
fi
for tool in wrk redis-benchmark redis-cli redis-server curl taskset setsid; do
    command -v "$tool" >/dev/null || die "$tool is still missing after apt-get"
done

# --- the peers' virtualenv -----------------------------------------------------------
venv="$tmp_root/sluice-serve-venv"
if ! "$venv/bin/python" -c 'import feast, pyarrow, pandas' 2>/dev/null; then
    log "installing Feast, pyarrow and pandas into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet feast pyarrow pandas
fi
py="$venv/bin/python"
feast="$venv/bin/feast"
export FEAST_USAGE=False PYTHONWARNINGS=ignore

# --- CPUs: servers on one side, load generators on the other ----------------------------
cpus=$(nproc)
expand_cpus() {  # a taskset list ("0-2,5") -> how many CPUs
    "$py" -c 'import sys; n=0
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-"); n += int(b or a) - int(a) + 1
print(n)' "$1"
}
on_server=()
on_client=()
if [[ $pin -eq 1 && $cpus -ge 2 ]]; then
    server_cpus="${server_cpus:-$((cpus - 1))}"
    client_cpus="${client_cpus:-$([[ $cpus -eq 2 ]] && echo 0 || echo "0-$((cpus - 2))")}"
    on_server=(taskset -c "$server_cpus")
    on_client=(taskset -c "$client_cpus")
    pinning="servers on CPU $server_cpus, load generators on CPU $client_cpus"
    threads="${threads:-$(expand_cpus "$client_cpus")}"
else
    [[ $pin -eq 1 ]] && log "WARNING: one CPU: servers and load generators share it"
    server_cpus=""
    client_cpus=""
    pin=0
    pinning="not pinned: servers and load generators share $cpus CPUs"
    threads="${threads:-$cpus}"
fi
[[ $threads -le $connections ]] || threads=$connections

# --- work directory, servers, cleanup ---------------------------------------------------
work="$(mktemp -d "$tmp_root/sluice-serve-XXXXXX")"
server_pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "${server_pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${server_pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    if [[ $keep -eq 1 || $rc -ne 0 && $rc -ne 3 ]]; then
        log "the work directory (logs, outputs) is kept: $work"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME LOG DIR CMD...: in its own process group (killed whole on exit), on the
# servers' CPUs; sets NAME_pid.
start_server() {
    local name=$1 logf=$2 dir=$3
    shift 3
    (cd "$dir" && exec setsid "${on_server[@]}" "$@" >"$logf" 2>&1 </dev/null) &
    local pid=$!
    server_pids+=("$pid")
    printf -v "${name}_pid" '%s' "$pid"
}

# wait_http NAME URL PID LOG TIMEOUT: until URL answers 200, the process dies, or time runs out.
wait_http() {
    local name=$1 url=$2 pid=$3 logf=$4 timeout=$5 t0=$SECONDS code
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
        [[ "$code" == 200 ]] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "--- the last lines of $logf:" >&2; tail -20 "$logf" >&2
            die "$name exited before $url answered"
        fi
        if (( SECONDS - t0 >= timeout )); then
            echo "--- the last lines of $logf:" >&2; tail -20 "$logf" >&2
            die "$name: $url did not answer 200 within ${timeout}s (last status: ${code:-none})"
        fi
        sleep 0.25
    done
}

# usage PID: "CPU-seconds RSS-kB CPU-busy-seconds": the CPU time and memory of the process
# group PID (every process in it), and the time the servers' CPUs spent running anything
# (user, nice, system; all CPUs when not pinned), to tell what other processes took.
usage() {
    "$py" - "$1" "${server_cpus:-}" <<'EOF'
import os, sys
pgid, tick, cpu, rss = int(sys.argv[1]), os.sysconf("SC_CLK_TCK"), 0, 0
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        stat = open(f"/proc/{d}/stat").read()
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[2]) != pgid:
            continue
        cpu += int(f[11]) + int(f[12])
        for line in open(f"/proc/{d}/status"):
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
want = set()
for part in filter(None, sys.argv[2].split(",")):
    a, _, b = part.partition("-")
    want.update(f"cpu{i}" for i in range(int(a), int(b or a) + 1))
busy = 0
for line in open("/proc/stat"):
    name, *v = line.split()
    if (name in want) if want else name == "cpu":
        busy += int(v[0]) + int(v[1]) + int(v[2])
print(f"{cpu / tick:.2f} {rss} {busy / tick:.2f}")
EOF
}

# busy: percent of all CPUs used by anything over 2 s (our servers are idle then).
busy() {
    "$py" - <<'EOF'
import time
def snap():
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(v), v[3] + v[4]
t0, i0 = snap(); time.sleep(2); t1, i1 = snap()
print(round(100 * (1 - (i1 - i0) / max(t1 - t0, 1))))
EOF
}

results="$work/results.jsonl"
: >"$results"
status=0

# --- 1. the view: sluice computes it and exports it; or pandas (--peers-only) ----------
view_parquet="$work/$view.parquet"
if [[ $peers_only -eq 0 ]]; then
    proj="$work/project"
    mkdir -p "$proj"
    (cd "$repo/examples/flights" && tar cf - --exclude=./.sluice .) | (cd "$proj" && tar xf -)
    cat "$here/project/plane_wide.toml" >>"$proj/sluice.toml"
    log "sluice run (the flights example plus the 50-feature view $view)"
    if ! "$sluice" --project "$proj" run --json >"$work/run.json" 2>"$work/run.log"; then
        tail -30 "$work/run.log" >&2; tail -c 2000 "$work/run.json" >&2
        die "sluice run failed (its output is above; the project is $proj)"
    fi
    grep -q "\"$view\"" "$work/run.json" || log "WARNING: sluice run --json does not mention $view"
    # The view's rows as Parquet, for Feast: `sluice query --format parquet` where it
    # exists, else the view's Delta table read directly (its live files, from the log).
    if ! "$sluice" --project "$proj" query "SELECT * FROM $view" --format parquet --output "$view_parquet" \
            >"$work/query.log" 2>&1 || [[ ! -s "$view_parquet" ]]; then
        log "sluice query --format parquet failed ($(head -c 200 "$work/query.log" | tr '\n' ' ')); reading $view's Delta table instead"
        "$py" - "$repo/bench" "$proj" "$view" "$view_parquet" <<'EOF' || die "could not read $view's Delta table under $proj"
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import pyarrow.parquet as pq
from common import find_delta_table, read_delta_table
table_dir = find_delta_table(Path(sys.argv[2]), sys.argv[3])
table = read_delta_table(table_dir) if table_dir else None
if table is None:
    sys.exit(f"run.sh: no Delta table {sys.argv[3]} with rows under {sys.argv[2]}")
pq.write_table(table, sys.argv[4], compression="zstd")
print(f"run.sh: {table.num_rows} rows of {table_dir}", file=sys.stderr)
EOF
    fi
    token=""
    if [[ $with_key -eq 1 ]]; then
        token=$("$sluice" --project "$proj" keys create --role reader --name bench | grep -E '^sk_' | tail -1 || true)
        [[ -n "$token" ]] || die "sluice keys create --role reader printed no sk_... key"
    fi
else
    log "--peers-only: computing $view with pandas (reference_view.py)"
    "$py" "$here/reference_view.py" "$repo/examples/flights/data/flights.parquet" "$view_parquet"
fi

# --- 2. Feast: the repository over the same rows; apply, materialize ----------------------
log "Feast: apply and materialize"
"$py" "$here/feast_repo.py" "$view_parquet" "$work/feast" --view "$view" --entity "$entity" \
    --timestamp "$timestamp" --keys-out "$work/keys.txt" >"$work/feast_repo.json"
"$py" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["features"]))' \
    "$work/feast/meta.json" >"$work/features.txt"
read -r mat_start mat_end value_bytes n_entities n_features < <("$py" -c 'import json, sys
m = json.load(open(sys.argv[1])); print(m["start"], m["end"], m["value_bytes"], m["rows"], len(m["features"]))' \
    "$work/feast/meta.json")
(cd "$work/feast" && "$feast" apply) >"$work/feast-apply.log" 2>&1 \
    || { tail -30 "$work/feast-apply.log" >&2; die "feast apply failed"; }
(cd "$work/feast" && "$feast" materialize "$mat_start" "$mat_end") >"$work/feast-materialize.log" 2>&1 \
    || { tail -30 "$work/feast-materialize.log" >&2; die "feast materialize failed"; }

# --- 3. the servers ----------------------------------------------------------------------
redis_port=$(free_port)
start_server redis "$work/redis.log" "$work" redis-server --port "$redis_port" --bind 127.0.0.1 \
    --save '' --appendonly no --protected-mode yes
feast_port=$(free_port)
start_server feast "$work/feast-serve.log" "$work/feast" "$feast" serve -h 127.0.0.1 -p "$feast_port" \
    --no-access-log --max-requests 0 -r 3600 -w "$feast_workers"
if [[ $peers_only -eq 0 ]]; then
    sluice_port=$(free_port)
    start_server sluice "$work/sluice-serve.log" "$work" "$sluice" --project "$proj" serve --listen "127.0.0.1:$sluice_port"
    wait_http "sluice serve" "http://127.0.0.1:$sluice_port/readyz" "$sluice_pid" "$work/sluice-serve.log" 60
fi
wait_http "feast serve" "http://127.0.0.1:$feast_port/health" "$feast_pid" "$work/feast-serve.log" 120
for _ in $(seq 40); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.25; done
redis-cli -p "$redis_port" ping >/dev/null 2>&1 || { tail "$work/redis.log" >&2; die "redis-server did not start"; }

# --- 4. pre-flight: right answers before any timing ---------------------------------------
check_args=(--expected "$work/feast/expected.jsonl" --view "$view" --entity "$entity" --feast "http://127.0.0.1:$feast_port")
if [[ $peers_only -eq 0 ]]; then
    check_args+=(--sluice "http://127.0.0.1:$sluice_port")
    [[ -n "$token" ]] && check_args+=(--token "$token")
fi
"$py" "$here/check.py" "${check_args[@]}" || die "the servers' answers are wrong (above); nothing was timed"
promtool_result="not run (no sluice)"
if [[ $peers_only -eq 0 ]]; then
    auth=()
    [[ -n "$token" ]] && auth=(-H "Authorization: Bearer $token")
    if ! command -v promtool >/dev/null; then
        promtool_result="not run (no promtool)"
    elif curl -sf "${auth[@]}" "http://127.0.0.1:$sluice_port/metrics" | promtool check metrics >"$work/promtool.txt" 2>&1; then
        promtool_result="ok"
    else
        promtool_result="problems: $(tr '\n' ';' <"$work/promtool.txt" | cut -c1-500)"
        log "WARNING: promtool check metrics on sluice's /metrics: $(cat "$work/promtool.txt")"
    fi
fi

# quiet: with --wait-quiet, wait for the machine to be idle (our servers are idle then).
quiet() {
    local t0=$SECONDS pct
    pct=$(busy)
    if (( wait_quiet > 0 && pct > 10 )); then
        log "the machine is ${pct}% busy; waiting up to ${wait_quiet}s for it to be idle"
        while (( pct > 10 && SECONDS - t0 < wait_quiet )); do sleep 5; pct=$(busy); done
    fi
    echo "$pct"
}
busy_pct=$(quiet)
busy_note=""
if (( busy_pct > 10 )); then
    busy_note="the machine was ${busy_pct}% busy before the measurements (other processes): the numbers are not comparable with a quiet run"
    log "WARNING: $busy_note"
fi

# --- 5. measurements --------------------------------------------------------------------
# measure CASE SERVER PID URL MODE BATCH CONNS SECONDS [RECORD]
measure() {
    local case=$1 server=$2 pid=$3 url=$4 mode=$5 nb=$6 conns=$7 secs=$8 record=${9:-1}
    local t=$threads out="$work/wrk-$case-c$conns-$record.txt" lua=(mode="$mode" keys="$work/keys.txt" view="$view"
        entity="$entity" batch="$nb" label="($case) $server $mode x$nb c$conns")
    (( t > conns )) && t=$conns
    [[ "$mode" == feast ]] && lua+=(features="$work/features.txt")
    [[ "$server" == sluice && -n "${token:-}" ]] && lua+=(token="$token")
    local u0 u1
    u0=$(usage "$pid")
    "${on_client[@]}" wrk -t"$t" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$here/lookup.lua" "$url" -- "${lua[@]}" \
        >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on case ($case)"; }
    u1=$(usage "$pid")
    grep '^BAD RESPONSE' "$out" >&2 || true
    local line
    line=$(grep '^RESULT ' "$out" | tail -1 | cut -c8-)
    [[ -n "$line" ]] || { cat "$out" >&2; die "wrk printed no RESULT for case ($case)"; }
    [[ $record -eq 1 ]] || return 0
    "$py" - "$line" "$case" "$server" "$nb" "$conns" "$u0" "$u1" >>"$results" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
u0, u1 = sys.argv[6].split(), sys.argv[7].split()
r.update(kind="wrk", case=sys.argv[2], server=sys.argv[3], batch=int(sys.argv[4]), connections=int(sys.argv[5]),
         cpu_s=float(u1[0]) - float(u0[0]), rss_kb=int(u1[1]),
         others_s=max(0.0, float(u1[2]) - float(u0[2]) - (float(u1[0]) - float(u0[0]))))
print(json.dumps(r))
print(f"  {r['label']}: {r['rps']:,.1f} req/s, p50 {r['p50_us'] / 1000:.3f} ms, p99 {r['p99_us'] / 1000:.3f} ms, "
      f"server CPU {100 * r['cpu_s'] / r['seconds']:.0f}%, non-200 {r['non200']}, wrong {r['bad_body']}", file=sys.stderr)
EOF
}

run_case() {  # CASE SERVER PID URL MODE BATCH
    (( wait_quiet > 0 )) && quiet >/dev/null
    log "case ($1): $2 $5, $6 entit$([[ $6 == 1 ]] && echo y || echo ies) a request"
    measure "$1" "$2" "$3" "$4" "$5" "$6" "$connections" "$warmup" 0
    measure "$1" "$2" "$3" "$4" "$5" "$6" "$connections" "$duration"
    measure "$1" "$2" "$3" "$4" "$5" "$6" 1 "$lat_duration"
}

if [[ $peers_only -eq 0 ]]; then
    run_case a sluice "$sluice_pid" "http://127.0.0.1:$sluice_port" sluice-get 1
    run_case b sluice "$sluice_pid" "http://127.0.0.1:$sluice_port" sluice-batch "$batch"
fi
run_case c feast "$feast_pid" "http://127.0.0.1:$feast_port" feast 1
run_case d feast "$feast_pid" "http://127.0.0.1:$feast_port" feast "$batch"

# (e) the floor: redis-benchmark GET of a value as large as one entity's features in JSON.
# SET first (same key), so that GET returns the value rather than nil.
redis_case() {  # CONNS REQUESTS TESTS
    local conns=$1 n=$2 tests=$3 out="$work/redis-c$1.csv" u0 u1 t0 t1
    u0=$(usage "$redis_pid"); t0=$(date +%s.%N)
    "${on_client[@]}" redis-benchmark -h 127.0.0.1 -p "$redis_port" -t "$tests" -n "$n" -c "$conns" -d "$value_bytes" --csv \
        >"$out" 2>&1 || { cat "$out" >&2; die "redis-benchmark failed"; }
    t1=$(date +%s.%N); u1=$(usage "$redis_pid")
    "$py" - "$out" "$conns" "$n" "$u0" "$u1" "$t0" "$t1" >>"$results" <<'EOF'
import csv, json, sys
rows = {r["test"]: r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"'))}
g = rows.get("GET") or sys.exit(f"run.sh: no GET line in {sys.argv[1]}")
ms = lambda k: float(g[k]) * 1000
u0, u1 = sys.argv[4].split(), sys.argv[5].split()
print(json.dumps({"kind": "redis", "case": "e", "server": "redis", "batch": 1, "connections": int(sys.argv[2]),
                  "label": f"(e) redis GET c{sys.argv[2]}", "requests": int(sys.argv[3]), "rps": float(g["rps"]),
                  "p50_us": ms("p50_latency_ms"), "p99_us": ms("p99_latency_ms"), "max_us": ms("max_latency_ms"),
                  "mean_us": ms("avg_latency_ms"), "seconds": float(sys.argv[7]) - float(sys.argv[6]),
                  "cpu_s": float(u1[0]) - float(u0[0]), "rss_kb": int(u1[1]), "non200": 0, "bad_body": 0,
                  "others_s": max(0.0, float(u1[2]) - float(u0[2]) - (float(u1[0]) - float(u0[0])))}))
EOF
}
(( wait_quiet > 0 )) && quiet >/dev/null
log "case (e): redis-benchmark GET, $value_bytes-byte values"
redis_case "$connections" "$redis_n" set,get
redis_case 1 $((redis_n / 4)) get

# --- 6. the table -----------------------------------------------------------------------
META_ENTITIES=$n_entities META_FEATURES=$n_features META_VALUE_BYTES=$value_bytes META_CPUS=$cpus \
META_PINNING="$pinning" META_PINNED=$pin META_DURATION=$duration META_LAT_DURATION=$lat_duration META_WARMUP=$warmup \
META_CONNECTIONS=$connections META_THREADS=$threads META_FEAST_WORKERS=$feast_workers META_WITH_KEY=$with_key \
META_BUSY=$busy_pct META_BUSY_NOTE="$busy_note" META_PROMTOOL="$promtool_result" META_SLUICE="$sluice" \
    "$py" - "$results" <<'EOF'
import json, os, platform, subprocess, sys
from importlib.metadata import version
e = os.environ
def out(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return ((p.stdout or p.stderr).strip().splitlines() or ["?"])[0]
    except Exception as x:  # noqa: BLE001
        return f"? ({x})"
meta = {"kind": "meta", "entities": int(e["META_ENTITIES"]), "features": int(e["META_FEATURES"]),
        "value_bytes": int(e["META_VALUE_BYTES"]), "cpus": int(e["META_CPUS"]), "pinning": e["META_PINNING"],
        "pinned": e["META_PINNED"] == "1",
        "duration_s": int(e["META_DURATION"]), "latency_duration_s": int(e["META_LAT_DURATION"]),
        "warmup_s": int(e["META_WARMUP"]), "connections": int(e["META_CONNECTIONS"]),
        "wrk_threads": int(e["META_THREADS"]), "feast_workers": int(e["META_FEAST_WORKERS"]),
        "with_key": e["META_WITH_KEY"] == "1", "busy_percent_before": int(e["META_BUSY"]),
        "busy_note": e["META_BUSY_NOTE"], "promtool": e["META_PROMTOOL"], "sluice": e["META_SLUICE"] or None,
        "sluice_version": out(e["META_SLUICE"], "--version") if e["META_SLUICE"] else None,
        "feast_version": version("feast"), "python": platform.python_version(), "wrk": out("wrk", "-v"),
        "redis": out("redis-server", "--version"), "kernel": platform.release()}
open(sys.argv[1], "a").write(json.dumps(meta) + "\n")
EOF
report_args=("$results")
[[ -n "$json_out" ]] && report_args+=(--json-out "$json_out")
[[ $require_bar -eq 1 ]] && report_args+=(--require-bar)
"$py" "$here/report.py" "${report_args[@]}" || status=$?
if [[ $peers_only -eq 0 ]]; then
    echo "metrics (promtool check metrics on sluice's /metrics): $promtool_result"
    [[ "$promtool_result" == ok ]] || status=$(( status == 0 ? 1 : status ))
fi
exit $status
