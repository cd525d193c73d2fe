#!/usr/bin/env bash
# Models: sluice's gradient-boosted trees against LightGBM on the flights example's model
# `late` (validation AUC and training time, same training set, same split, same inputs, in
# the same run), and sluice serve's prediction latency over HTTP on loopback with wrk.
#
# Usage: bash bench/models/run.sh [--quick] [options...]
#
#   --quick             a smoke run: 1 repetition, 3 s per measurement, 1 s warm-ups
#   --reps N            training repetitions of each learner, best time kept (default 3): sluice
#                       retrains `late` with params.seed = 1, 2, ... (trees do not sample at
#                       the defaults, so every version is the same model)
#   --duration S        seconds of each loaded measurement (default 20)
#   --latency-duration S  seconds of each one-connection measurement (default 10)
#   --warmup S          seconds of the unrecorded run before each case (default 3)
#   --connections N     connections of the loaded measurements (default 16)
#   --threads N         wrk threads (default: the client's CPUs)
#   --no-pin            do not pin: sluice serve and wrk share every CPU
#   --server-cpus LIST  sluice serve's CPUs (taskset list; default: the last CPU)
#   --client-cpus LIST  wrk's CPUs (default: every other CPU)
#   --no-logistic       leave out sluice's `learner = "logistic"` against scikit-learn
#   --no-latency        the training half only (no server, no wrk)
#   --wait-quiet S      before each timed part, wait up to S seconds for the machine to be idle
#                       (under 10% busy; e.g. for a build to finish); default: do not wait
#   --require-bar       exit 3 when |sluice AUC - LightGBM AUC| > 0.01
#   --json-out FILE     every result as one JSON document
#   --keep              keep the work directory (project, training sets, logs, wrk outputs)
#
# Environment:
#   SLUICE_BIN   the sluice binary (default ~/.cache/sluice-release/release/sluice, then
#                ~/.cache/sluice-target/debug/sluice); nothing is built here
#   TMPDIR       where the virtualenv (reused) and the work directory (removed) live
#
# Steps, on a copy of examples/flights:
#   1. `sluice run --json late` trains version 1 (with only what `late` needs: nothing else
#      runs beside its training), then --reps - 1 more versions; with the logistic model,
#      `[models.late_logistic]` (the same spine, columns, features and split) is appended
#      and trained alone; then `sluice run --json` builds the rest (the batch predictions).
#      `sluice model late --json` gives each version's metrics and train_ms.
#   2. `sluice training-set` writes the model's training set (its spine and views) and the
#      prediction spine's; compare.py trains LightGBM (and scikit-learn) on exactly the same
#      split and inputs and prints AUC, log loss and times side by side.
#   3. `sluice serve` (pinned to one CPU; wrk on the other): check.py first checks online
#      scores (in [0, 1]; online from raw values = batch prediction to 1e-9), then wrk
#      (predict.lua) measures, at --connections and at 1 connection:
#        (p) POST /v1/predict/late {"entity": {...}}: a real flight; features read online
#        (v) POST /v1/predict/late {"values": {...}}: every input given; the model alone
#        (g) GET  /v1/predictions/late/<flight_id>: an upcoming flight's batch prediction
#
# Requires apt-get (wrk is installed when missing) and python3 with venv; LightGBM,
# scikit-learn, pandas and pyarrow come from PyPI into ${TMPDIR:-/tmp}/sluice-models-venv,
# made on first use and reused.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

model="late"
logistic_model="late_logistic"
reps=3
duration=20
lat_duration=10
warmup=3
connections=16
threads=""
pin=1
server_cpus=""
client_cpus=""
logistic=1
latency=1
wait_quiet=0
require_bar=0
json_out=""
keep=0

log() { echo "run.sh: $*" >&2; }
die() { echo "run.sh: error: $*" >&2; exit 2; }
num() { [[ "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] || die "$1 needs a positive whole number, not '$2'"; echo "$2"; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) reps=1; duration=3; lat_duration=2; warmup=1; shift ;;
        --reps) reps=$(num "$1" "${2:-}"); shift 2 ;;
        --duration) duration=$(num "$1" "${2:-}"); shift 2 ;;
        --latency-duration) lat_duration=$(num "$1" "${2:-}"); shift 2 ;;
        --warmup) warmup=$(num "$1" "${2:-}"); shift 2 ;;
        --connections) connections=$(num "$1" "${2:-}"); shift 2 ;;
        --threads) threads=$(num "$1" "${2:-}"); shift 2 ;;
        --no-pin) pin=0; shift ;;
        --server-cpus) server_cpus="${2:?--server-cpus needs a CPU list}"; shift 2 ;;
        --client-cpus) client_cpus="${2:?--client-cpus needs a CPU list}"; shift 2 ;;
        --no-logistic) logistic=0; shift ;;
        --no-latency) latency=0; shift ;;
        --wait-quiet) wait_quiet=$(num "$1" "${2:-}"); shift 2 ;;
        --require-bar) require_bar=1; shift ;;
        --json-out) json_out="$(realpath -m "${2:?--json-out needs a file}")"; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# --- sluice: the binary, which must have `model` (and `serve`) ------------------------
if [[ -n "${SLUICE_BIN:-}" ]]; then
    sluice="$SLUICE_BIN"
elif [[ -x "$HOME/.cache/sluice-release/release/sluice" ]]; then
    sluice="$HOME/.cache/sluice-release/release/sluice"
elif [[ -x "$HOME/.cache/sluice-target/debug/sluice" ]]; then
    sluice="$HOME/.cache/sluice-target/debug/sluice"
else
    die "no sluice binary: set SLUICE_BIN (e.g. a release build: cargo build --release -p sluice-cli)"
fi
[[ -x "$sluice" ]] || die "sluice binary $sluice is missing or not executable"
sluice="$(realpath "$sluice")"
"$sluice" model --help >/dev/null 2>&1 || die "$sluice has no 'model' command ('sluice model --help' failed); build a newer sluice"
if [[ $latency -eq 1 ]] && ! "$sluice" serve --help >/dev/null 2>&1; then
    die "$sluice has no 'serve' command; build a newer sluice, or run with --no-latency"
fi
build_kind="release"
case "$sluice" in
    */debug/*) build_kind="debug"; log "WARNING: $sluice is a debug build; its times are a lower bound, not sluice's speed" ;;
esac

# --- tools: wrk, curl, taskset, setsid (apt-get when missing) ----------------------------
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
if [[ $latency -eq 1 ]]; then
    need=()
    command -v wrk >/dev/null || need+=(wrk)
    command -v curl >/dev/null || need+=(curl)
    command -v taskset >/dev/null && command -v setsid >/dev/null || need+=(util-linux)
    [[ ${#need[@]} -eq 0 ]] || apt_install "${need[@]}"
    for tool in wrk curl taskset setsid; do
        command -v "$tool" >/dev/null || die "$tool is still missing after apt-get"
    done
fi

# --- the peers' virtualenv -----------------------------------------------------------
venv="$tmp_root/sluice-models-venv"
if ! "$venv/bin/python" -c 'import lightgbm, sklearn, pandas, pyarrow' 2>/dev/null; then
    log "installing LightGBM, scikit-learn, pandas and pyarrow into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet lightgbm scikit-learn pandas pyarrow
fi
py="$venv/bin/python"
export PYTHONWARNINGS=ignore

# --- CPUs: sluice serve on one side, wrk on the other ------------------------------------
cpus=$(nproc)
on_server=()
on_client=()
if [[ $pin -eq 1 && $cpus -ge 2 ]]; then
    server_cpus="${server_cpus:-$((cpus - 1))}"
    client_cpus="${client_cpus:-$([[ $cpus -eq 2 ]] && echo 0 || echo "0-$((cpus - 2))")}"
    on_server=(taskset -c "$server_cpus")
    on_client=(taskset -c "$client_cpus")
    pinning="sluice serve on CPU $server_cpus, wrk on CPU $client_cpus"
    threads="${threads:-$("$py" -c 'import sys; n=0
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-"); n += int(b or a) - int(a) + 1
print(n)' "$client_cpus")}"
else
    [[ $pin -eq 1 ]] && log "WARNING: one CPU: sluice serve and wrk share it"
    server_cpus=""
    pin=0
    pinning="not pinned: sluice serve and wrk share $cpus CPUs"
    threads="${threads:-$cpus}"
fi
[[ $threads -le $connections ]] || threads=$connections

# --- work directory, server, cleanup -----------------------------------------------------
work="$(mktemp -d "$tmp_root/sluice-models-XXXXXX")"
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

# busy: percent of all CPUs used by anything over 2 s.
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
# quiet: with --wait-quiet, wait for the machine to be idle; prints how busy it was.
quiet() {
    local t0=$SECONDS pct
    pct=$(busy)
    if (( wait_quiet > 0 && pct > 10 )); then
        log "the machine is ${pct}% busy; waiting up to ${wait_quiet}s for it to be idle"
        while (( pct > 10 && SECONDS - t0 < wait_quiet )); do sleep 5; pct=$(busy); done
    fi
    echo "$pct"
}
busy_notes=()
check_quiet() {  # WHAT
    local pct
    pct=$(quiet)
    if (( pct > 10 )); then
        busy_notes+=("the machine was ${pct}% busy before $1 (other processes): its numbers are not those of a quiet machine")
        log "WARNING: ${busy_notes[-1]}"
    fi
}

now() { date +%s.%N; }
elapsed() { "$py" -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.3f}")' "$1" "$2"; }

# sluice_run LABEL [ASSET]: `sluice run --json [ASSET]`; fails unless every asset it reports is
# built or up to date (and ASSET is among them).
sluice_run() {
    local label=$1 asset=${2:-} t0 t1
    local out="$work/run-$label.json" err="$work/run-$label.log"
    t0=$(now)
    if ! "$sluice" --project "$proj" run --json ${asset:+"$asset"} >"$out" 2>"$err"; then
        tail -30 "$err" >&2; tail -c 3000 "$out" >&2
        die "sluice run ${asset:-(everything)} failed (its output is above; the project is $proj)"
    fi
    t1=$(now)
    "$py" - "$repo/bench" "$out" "$asset" <<'EOF' || die "sluice run ${asset:-(everything)}: see above ($out)"
import json, sys
sys.path.insert(0, sys.argv[1])
from common import parse_sluice_json
doc = parse_sluice_json(open(sys.argv[2]).read())
found = []
def walk(x):
    if isinstance(x, dict):
        if isinstance(x.get("name"), str) and isinstance(x.get("status"), str):
            found.append(x)
        for v in x.values():
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(doc)
bad = [a for a in found if a["status"].lower().replace(" ", "_") not in ("built", "up_to_date", "uptodate", "skipped")]
for a in bad:
    print(f"run.sh: asset {a['name']}: {a['status']}: {a.get('error') or ''}", file=sys.stderr)
want = sys.argv[3]
if want and not any(a["name"] == want for a in found):
    print(f"run.sh: the run's summary does not mention {want}", file=sys.stderr)
    sys.exit(1)
sys.exit(1 if bad else 0)
EOF
    log "sluice run ${asset:-(everything)}: $(elapsed "$t0" "$t1") s"
}

# set_seed K: params.seed = K in [models.$model] of the project file (the model's fingerprint
# changes, so the next run trains a new version; at the default subsample = colsample = 1
# the seed draws nothing).
set_seed() {
    "$py" - "$proj/sluice.toml" "$model" "$1" <<'EOF'
import re, sys, tomllib
path, model, seed = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(path, encoding="utf-8").read().split("\n")
head = next((i for i, l in enumerate(lines) if l.strip() == f"[models.{model}]"), None)
if head is None:
    sys.exit(f"run.sh: no [models.{model}] line in {path}")
end = next((i for i in range(head + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
sub = next((i for i in range(head + 1, len(lines)) if lines[i].strip() == f"[models.{model}.params]"), None)
inline = next((i for i in range(head + 1, end) if re.match(r"\s*params\s*=\s*\{", lines[i])), None)
if inline is not None:
    l = lines[inline]
    lines[inline] = re.sub(r"seed\s*=\s*\d+", f"seed = {seed}", l) if re.search(r"\bseed\s*=", l) \
        else re.sub(r"\{\s*", "{ seed = " + seed + ", ", l, count=1).replace(", }", " }")
elif sub is not None:
    sub_end = next((i for i in range(sub + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    seed_line = next((i for i in range(sub + 1, sub_end) if re.match(r"\s*seed\s*=", lines[i])), None)
    if seed_line is None:
        lines.insert(sub + 1, f"seed = {seed}")
    else:
        lines[seed_line] = f"seed = {seed}"
else:
    lines.insert(head + 1, f"params = {{ seed = {seed} }}")
text = "\n".join(lines)
tomllib.loads(text)
open(path, "w", encoding="utf-8").write(text)
EOF
}

results="$work/results.jsonl"
: >"$results"
status=0

# --- 1. sluice trains the model ------------------------------------------------------------
proj="$work/project"
mkdir -p "$proj"
(cd "$repo/examples/flights" && tar cf - --exclude=./.sluice --exclude=./exports .) | (cd "$proj" && tar xf -)
read -r spine features < <("$py" - "$here" "$proj/sluice.toml" "$model" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from mcommon import model_section
sec = model_section(sys.argv[2], sys.argv[3])
print(sec["spine"], ",".join(sec.get("features", [])))
EOF
) || die "the example has no usable [models.$model]"
[[ -n "$features" ]] || die "[models.$model] has no features"

check_quiet "sluice's training"
sluice_run train-v1 "$model"
for ((k = 1; k < reps; k++)); do
    set_seed "$k"
    sluice_run "train-v$((k + 1))" "$model"
done
if [[ $logistic -eq 1 ]]; then
    "$py" - "$here" "$proj/sluice.toml" "$model" "$logistic_model" >>"$proj/sluice.toml" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
from mcommon import model_section
sec = model_section(sys.argv[2], sys.argv[3])
q = lambda v: json.dumps(v if not hasattr(v, "isoformat") else v.isoformat())
print()
print("# bench/models: the same inputs, by logistic regression (sluice's linear encoding)")
print(f"[models.{sys.argv[4]}]")
for key in ("spine", "timestamp", "label", "columns", "features"):
    if key in sec:
        print(f"{key} = {q(sec[key])}")
print('learner = "logistic"')
print(f"split = {{ before = {q(sec['split']['before'])} }}")
EOF
    sluice_run train-logistic "$logistic_model"
fi
sluice_run rest
"$sluice" --project "$proj" model "$model" --json >"$work/$model.json" 2>"$work/model.log" \
    || { cat "$work/model.log" >&2; die "sluice model $model --json failed"; }
n_versions=$("$py" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$work/$model.json")
[[ $n_versions -eq $reps ]] || log "WARNING: sluice model $model lists $n_versions version(s) after $reps training run(s)"
logistic_args=()
if [[ $logistic -eq 1 ]]; then
    "$sluice" --project "$proj" model "$logistic_model" --json >"$work/$logistic_model.json" 2>>"$work/model.log" \
        || { cat "$work/model.log" >&2; die "sluice model $logistic_model --json failed"; }
    logistic_args=(--logistic --logistic-model "$logistic_model" --sluice-logistic "$work/$logistic_model.json")
fi

# --- 2. the same training set, LightGBM and scikit-learn ------------------------------------
t0=$(now)
"$sluice" --project "$proj" training-set --spine "$spine" --features "$features" --output "$work/training.parquet" \
    >"$work/training-set.log" 2>&1 || { cat "$work/training-set.log" >&2; die "sluice training-set --spine $spine failed"; }
t1=$(now)
ts_seconds=$(elapsed "$t0" "$t1")
log "sluice training-set --spine $spine: $ts_seconds s"
check_quiet "LightGBM's training"
compare_args=(--training-set "$work/training.parquet" --toml "$proj/sluice.toml" --model "$model" --project "$proj"
              --sluice-versions "$work/$model.json" --training-set-seconds "$ts_seconds" --reps "$reps"
              --out "$work/accuracy.json" "${logistic_args[@]}")
[[ $require_bar -eq 1 ]] && compare_args+=(--require-bar)
"$py" "$here/compare.py" "${compare_args[@]}" || {
    rc=$?
    [[ $rc -eq 3 ]] || die "compare.py failed (above)"
    status=3
}

# --- 3. sluice serve: pre-flight checks, then wrk -------------------------------------------
if [[ $latency -eq 1 ]]; then
    pred_spine=$("$py" - "$here" "$proj/sluice.toml" "$model" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from mcommon import model_section
print((model_section(sys.argv[2], sys.argv[3]).get("predictions") or {}).get("spine", ""))
EOF
)
    [[ -n "$pred_spine" ]] || die "[models.$model.predictions] has no spine: no batch predictions to look up"
    "$sluice" --project "$proj" training-set --spine "$pred_spine" --features "$features" --output "$work/upcoming.parquet" \
        >"$work/training-set-upcoming.log" 2>&1 \
        || { cat "$work/training-set-upcoming.log" >&2; die "sluice training-set --spine $pred_spine failed"; }
    "$py" "$here/make_requests.py" --toml "$proj/sluice.toml" --model "$model" --project "$proj" \
        --training-set "$work/training.parquet" --upcoming "$work/upcoming.parquet" --out-dir "$work/requests" \
        || die "make_requests.py failed"
    serving=$("$py" -c 'import json, sys
v = [x["version"] for x in json.load(open(sys.argv[1])) if x.get("promoted")]
print(max(v) if v else "")' "$work/$model.json")
    [[ -n "$serving" ]] || die "no version of $model is promoted: nothing serves"

    port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    (cd "$work" && exec setsid "${on_server[@]}" "$sluice" --project "$proj" serve --listen "127.0.0.1:$port" \
        >"$work/serve.log" 2>&1 </dev/null) &
    sluice_pid=$!
    server_pids+=("$sluice_pid")
    t0=$SECONDS
    until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz" || true)" == 200 ]]; do
        if ! kill -0 "$sluice_pid" 2>/dev/null; then tail -20 "$work/serve.log" >&2; die "sluice serve exited"; fi
        (( SECONDS - t0 < 60 )) || { tail -20 "$work/serve.log" >&2; die "sluice serve: /readyz not 200 within 60 s"; }
        sleep 0.25
    done
    "$py" "$here/check.py" --url "http://127.0.0.1:$port" --model "$model" --dir "$work/requests" \
        --version "$serving" --out "$work/check.json" || die "sluice serve predicts wrong (above); nothing was timed"

    # usage PID: "CPU-seconds RSS-kB busy-seconds" of the process group PID, and the time the
    # server's CPUs spent running anything (to tell what other processes took).
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

    # measure CASE MODE FILE CONNS SECONDS [RECORD]
    measure() {
        local case=$1 mode=$2 file=$3 conns=$4 secs=$5 record=${6:-1} t=$threads u0 u1 line
        local out="$work/wrk-$case-c$conns-$record.txt"
        local lua=(mode="$mode" model="$model" label="($case) $mode c$conns")
        [[ "$mode" == get ]] && lua+=(keys="$file") || lua+=(bodies="$file")
        (( t > conns )) && t=$conns
        u0=$(usage "$sluice_pid")
        "${on_client[@]}" wrk -t"$t" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$here/predict.lua" \
            "http://127.0.0.1:$port" -- "${lua[@]}" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on case ($case)"; }
        u1=$(usage "$sluice_pid")
        grep '^BAD RESPONSE' "$out" >&2 || true
        line=$(grep '^RESULT ' "$out" | tail -1 | cut -c8-)
        [[ -n "$line" ]] || { cat "$out" >&2; die "wrk printed no RESULT for case ($case)"; }
        [[ $record -eq 1 ]] || return 0
        "$py" - "$line" "$case" "$conns" "$u0" "$u1" >>"$results" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
u0, u1 = sys.argv[4].split(), sys.argv[5].split()
r.update(kind="wrk", case=sys.argv[2], connections=int(sys.argv[3]), cpu_s=float(u1[0]) - float(u0[0]),
         rss_kb=int(u1[1]), others_s=max(0.0, float(u1[2]) - float(u0[2]) - (float(u1[0]) - float(u0[0]))))
print(json.dumps(r))
print(f"  {r['label']}: {r['rps']:,.1f} req/s, p50 {r['p50_us'] / 1000:.3f} ms, p99 {r['p99_us'] / 1000:.3f} ms, "
      f"server CPU {100 * r['cpu_s'] / r['seconds']:.0f}%, non-200 {r['non200']}, no score {r['bad_body']}",
      file=sys.stderr)
EOF
    }
    run_case() {  # CASE MODE FILE
        (( wait_quiet > 0 )) && quiet >/dev/null
        log "case ($1): $2 $(basename "$3")"
        measure "$1" "$2" "$3" "$connections" "$warmup" 0
        measure "$1" "$2" "$3" "$connections" "$duration"
        measure "$1" "$2" "$3" 1 "$lat_duration"
    }
    check_quiet "the latency measurements"
    run_case p predict "$work/requests/entity.jsonl"
    run_case v predict "$work/requests/values.jsonl"
    run_case g get "$work/requests/keys.txt"
fi

# --- 4. the summary ----------------------------------------------------------------------
busy_note=$(printf '%s; ' "${busy_notes[@]}"); busy_note="${busy_note%; }"
META_CPUS=$cpus META_PINNING="$pinning" META_PINNED=$pin META_DURATION=$duration META_LAT_DURATION=$lat_duration \
META_WARMUP=$warmup META_CONNECTIONS=$connections META_THREADS=$threads META_BUSY_NOTE="$busy_note" \
META_SLUICE="$sluice" META_BUILD="$build_kind" META_REPS=$reps META_LATENCY=$latency \
    "$py" - "$results" <<'EOF'
import json, os, platform, subprocess, sys
e = os.environ
def out(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return ((p.stdout or p.stderr).strip().splitlines() or ["?"])[0]
    except Exception as x:  # noqa: BLE001
        return f"? ({x})"
meta = {"kind": "meta", "cpus": int(e["META_CPUS"]), "pinning": e["META_PINNING"], "pinned": e["META_PINNED"] == "1",
        "duration_s": int(e["META_DURATION"]), "latency_duration_s": int(e["META_LAT_DURATION"]),
        "warmup_s": int(e["META_WARMUP"]), "connections": int(e["META_CONNECTIONS"]),
        "wrk_threads": int(e["META_THREADS"]), "busy_note": e["META_BUSY_NOTE"], "reps": int(e["META_REPS"]),
        "latency_measured": e["META_LATENCY"] == "1", "sluice": e["META_SLUICE"], "build": e["META_BUILD"],
        "sluice_version": out(e["META_SLUICE"], "--version"), "python": platform.python_version(),
        "wrk": out("wrk", "-v") if e["META_LATENCY"] == "1" else None, "kernel": platform.release()}
open(sys.argv[1], "a").write(json.dumps(meta) + "\n")
EOF
report_args=("$results" --accuracy "$work/accuracy.json")
[[ -f "$work/check.json" ]] && report_args+=(--check "$work/check.json")
[[ -n "$json_out" ]] && report_args+=(--json-out "$json_out")
"$py" "$here/report.py" "${report_args[@]}" || status=$(( status == 0 ? 1 : status ))
echo "sluice: $sluice ($build_kind build)"
exit $status
