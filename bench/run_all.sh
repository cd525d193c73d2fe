#!/usr/bin/env bash
# Every benchmark on ONE release build of sluice, then one results table.
#
# Usage: bash bench/run_all.sh [--out DIR] [--only a,b,...] [--skip a,b,...] [--reps N] [--quick]
#
#   --out DIR        the results directory (default ${TMPDIR:-/tmp}/bench-results-<date>-<time>):
#                    <bench>.json (each bench's --json-out), <bench>.log (its stdout and stderr),
#                    status.tsv, run_all.meta and, at the end, results.md (bench/summarize.py);
#                    an existing DIR keeps the results of the benches not run now
#   --only LIST      run only these benches; --skip LIST: all but these. Names:
#                    ingest_groupby validate features windows models serve orchestration
#                    connectors collections dashboard
#   --reps N         repetitions, passed to every bench that takes --reps (not to dashboard, whose
#                    --reps is requests per page; collections: ann.py --search-runs, embed.py --reps)
#   --quick          a smoke run: each bench's own small sizes (validate/features --rows 200000,
#                    windows --events 200000 --spine 20000, orchestration --tasks 100, connectors
#                    --rows 200000, models/serve --quick, ANN on 20,000 vectors, dashboard 10
#                    requests a page) and --reps 1 unless --reps is given
#
# Environment:
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli` once into
#                     ${CARGO_TARGET_DIR:-$HOME/.cache/sluice-release} (and, for collections, the
#                     `ann` and `embed` examples of sluice-retrieve into the same directory)
#   SLUICE_ANN_BIN, SLUICE_EMBED_BIN  collections' drivers (default: examples/ann and
#                     examples/embed beside SLUICE_BIN); collections is SKIPPED without `ann`
#   ANN_PYTHON        a Python with numpy and the ANN peers (default: a wheels-only virtualenv
#                     ${TMPDIR:-/tmp}/sluice-ann-venv: numpy, faiss-cpu, usearch, and hnswlib
#                     only if it has a wheel)
#   SLUICE_ONNXRUNTIME  libonnxruntime.so for collections' embed.py (else looked for in the
#                     onnxruntime wheel of ~/.cache/sluice-ci-venv); embed.py is left out without it
#   BENCH_PG_URL      the connectors bench's PostgreSQL (see bench/README.md)
#
# A bench that fails does not stop the others: it is recorded as FAILED with the last lines of
# its log, and the script exits 1 at the end. A bench whose prerequisites are missing
# (collections without the `ann` driver) is recorded as SKIPPED.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"
ALL=(ingest_groupby validate features windows models serve orchestration connectors collections dashboard)

die() { echo "run_all.sh: error: $*" >&2; exit 2; }
log() { echo "run_all.sh: $*" >&2; }

out=""
only=""
skip=""
reps=""
quick=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="${2:?--out needs a directory}"; shift 2 ;;
        --only) only="${2:?--only needs a list}"; shift 2 ;;
        --skip) skip="${2:?--skip needs a list}"; shift 2 ;;
        --reps)
            [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive whole number"
            reps="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $quick -eq 1 && -z "$reps" ]] && reps=1

known() { local b; for b in "${ALL[@]}"; do [[ "$b" == "$1" ]] && return 0; done; return 1; }
for name in ${only//,/ } ${skip//,/ }; do
    known "$name" || die "unknown bench '$name' (one of: ${ALL[*]})"
done
selected=()
for b in "${ALL[@]}"; do
    if [[ -n "$only" && ",$only," != *",$b,"* ]]; then continue; fi
    if [[ ",$skip," == *",$b,"* ]]; then continue; fi
    selected+=("$b")
done
[[ ${#selected[@]} -gt 0 ]] || die "no bench selected"
want() { [[ " ${selected[*]} " == *" $1 "* ]]; }

out="${out:-$tmp_root/bench-results-$(date +%Y-%m-%d-%H%M%S)}"
out="$(realpath -m "$out")"
mkdir -p "$out" || die "cannot create $out"
log "results in $out"

# --- one build of sluice ------------------------------------------------------------
if [[ -z "${SLUICE_BIN:-}" ]]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-release}"
    log "building sluice (release) into $CARGO_TARGET_DIR"
    (cd "$repo" && cargo build --release -p sluice-cli) || die "cargo build --release -p sluice-cli failed"
    SLUICE_BIN="$CARGO_TARGET_DIR/release/sluice"
    if want collections; then
        log "building the ann and embed examples of sluice-retrieve (collections)"
        (cd "$repo" && cargo build --release -p sluice-retrieve --example ann --example embed) \
            || log "WARNING: building the collections examples failed; collections will be skipped"
    fi
fi
[[ -x "$SLUICE_BIN" ]] || die "sluice binary $SLUICE_BIN is missing or not executable"
SLUICE_BIN="$(realpath "$SLUICE_BIN")"
export SLUICE_BIN
sluice_version="$("$SLUICE_BIN" --version 2>&1 | head -1)"
log "sluice: $SLUICE_BIN ($sluice_version)"

# --- what the summary needs to know about this run ---------------------------------
{
    echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo '?')"
    if [[ -n "$(git -C "$repo" --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        echo "dirty=yes"
    else
        echo "dirty=no"
    fi
    echo "sluice_bin=$SLUICE_BIN"
    echo "sluice_version=$sluice_version"
    echo "nproc=$(nproc)"
    echo "mem_total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    echo "cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "quick=$quick"
    echo "reps=${reps:-default}"
    echo "benches=${selected[*]}"
} >"$out/run_all.meta"
# status.tsv: one line per bench; an earlier run's lines into the same --out are kept for
# the benches not run now (so `--out DIR --only x` re-runs x into DIR's table).
if [[ -f "$out/status.tsv" ]]; then
    awk -F'\t' -v sel=" ${selected[*]} " 'NR == 1 || index(sel, " " $1 " ") == 0' "$out/status.tsv" >"$out/status.tsv.new"
    mv "$out/status.tsv.new" "$out/status.tsv"
else
    printf 'bench\tstatus\tseconds\texit\n' >"$out/status.tsv"
fi

# --- collections: no run.sh of its own; ann.py (and embed.py when it can run) --------
# Exit 77: skipped (the reason is the log's last line).
run_collections() {
    local json_ann="$1" json_embed="$2" py ann_bin embed_bin ort venv status=0
    local bin_dir
    bin_dir="$(dirname "$SLUICE_BIN")"
    ann_bin="${SLUICE_ANN_BIN:-$bin_dir/examples/ann}"
    embed_bin="${SLUICE_EMBED_BIN:-$bin_dir/examples/embed}"
    if [[ ! -x "$ann_bin" ]]; then
        echo "SKIPPED: no ann driver at $ann_bin (cargo build --release -p sluice-retrieve --example ann, or set SLUICE_ANN_BIN)"
        return 77
    fi
    if [[ -n "${ANN_PYTHON:-}" ]]; then
        py="$ANN_PYTHON"
    else
        venv="$tmp_root/sluice-ann-venv"
        py="$venv/bin/python"
        if ! "$py" -c 'import numpy' 2>/dev/null; then
            echo "run_all.sh: installing numpy, faiss-cpu and usearch (wheels only) into $venv"
            python3 -m venv "$venv" || return 1
            "$py" -m pip install --quiet --upgrade pip
            "$py" -m pip install --quiet --only-binary=:all: numpy faiss-cpu usearch || return 1
            "$py" -m pip install --quiet --only-binary=:all: hnswlib \
                || echo "run_all.sh: hnswlib has no wheel here; ann.py leaves it out (ANN_PYTHON= a venv with it)"
        fi
    fi
    local ann=(--sluice-ann "$ann_bin" --data-dir "$tmp_root/ann-data" --threads 2 --runs 1 --json-out "$json_ann")
    if [[ $quick -eq 1 ]]; then
        ann+=(--data clustered --clusters 20 --n 20000 --ef 16,32,64,128)
    else
        ann+=(--data clustered --clusters 100 --n 100000)
    fi
    ann+=(--search-runs "${reps:-3}")
    echo "=== ann.py ${ann[*]}"
    OMP_WAIT_POLICY=PASSIVE "$py" "$here/collections/ann.py" "${ann[@]}" || status=1

    ort="${SLUICE_ONNXRUNTIME:-${ORT_DYLIB_PATH:-}}"
    if [[ -z "$ort" ]]; then
        ort="$(ls "$HOME"/.cache/sluice-ci-venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* \
                  /tmp/sluice-embed-bench-venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* \
                  2>/dev/null | grep -v providers | head -1)"
    fi
    local model="${SLUICE_MODELS:-$HOME/.cache/sluice/models}/all-minilm-l6-v2/model.onnx"
    if [[ ! -x "$embed_bin" ]]; then
        echo "=== embed.py left out: no embed driver at $embed_bin"
    elif [[ -z "$ort" ]]; then
        echo "=== embed.py left out: no libonnxruntime.so (set SLUICE_ONNXRUNTIME)"
    elif [[ ! -f "$model" ]]; then
        echo "=== embed.py left out: no model at $model (scripts/fetch-model.sh)"
    else
        echo "=== embed.py (SLUICE_ONNXRUNTIME=$ort)"
        SLUICE_ONNXRUNTIME="$ort" python3 "$here/collections/embed.py" --sluice "$SLUICE_BIN" --embed "$embed_bin" \
            --threads 2 --reps "${reps:-3}" --json-out "$json_embed" || status=1
    fi
    return $status
}

# --- each bench's arguments ----------------------------------------------------------
bench_args() {  # BENCH JSON: prints one argument a line
    local b="$1" json="$2"
    printf '%s\n' --json-out "$json"
    if [[ $quick -eq 1 ]]; then
        case "$b" in
            validate|features|connectors) printf '%s\n' --rows 200000 ;;
            windows) printf '%s\n' --events 200000 --spine 20000 ;;
            models|serve) printf '%s\n' --quick ;;
            orchestration) printf '%s\n' --tasks 100 ;;
            # the dashboard's --reps is requests per page
            dashboard) printf '%s\n' --reps 10 ;;
        esac
    fi
    # After --quick, which sets its own repetitions; serve and the dashboard take none.
    case "$b" in
        serve|dashboard) ;;
        *) [[ -n "$reps" ]] && printf '%s\n' --reps "$reps" ;;
    esac
    return 0
}

# --- run them ------------------------------------------------------------------------
failed=()
i=0
for b in "${selected[@]}"; do
    i=$((i + 1))
    logf="$out/$b.log"
    json="$out/$b.json"
    # No stale results from an earlier run into the same directory.
    if [[ "$b" == collections ]]; then
        rm -f "$out/collections-ann.json" "$out/collections-embed.json"
    else
        rm -f "$json"
    fi
    t0=$SECONDS
    if [[ "$b" == collections ]]; then
        log "[$i/${#selected[@]}] collections: ann.py (+ embed.py), log $logf"
        run_collections "$out/collections-ann.json" "$out/collections-embed.json" >"$logf" 2>&1 </dev/null
        rc=$?
    else
        mapfile -t args < <(bench_args "$b" "$json")
        log "[$i/${#selected[@]}] $b: bash bench/$b/run.sh ${args[*]}, log $logf"
        (cd "$repo" && bash "$here/$b/run.sh" "${args[@]}") >"$logf" 2>&1 </dev/null
        rc=$?
    fi
    secs=$((SECONDS - t0))
    if [[ $rc -eq 0 ]]; then
        status=ok
    elif [[ $rc -eq 77 && "$b" == collections ]]; then
        status=SKIPPED
    else
        status=FAILED
        failed+=("$b")
    fi
    printf '%s\t%s\t%s\t%s\n' "$b" "$status" "$secs" "$rc" >>"$out/status.tsv"
    log "[$i/${#selected[@]}] $b: $status in ${secs} s (exit $rc)"
    if [[ "$status" != ok ]]; then
        tail -n 15 "$logf" | sed 's/^/    | /' >&2
    fi
done
echo "finished=$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$out/run_all.meta"

# --- the table -----------------------------------------------------------------------
python3 "$here/summarize.py" "$out" || log "WARNING: summarize.py failed"
log "results: $out/results.md"
if [[ ${#failed[@]} -gt 0 ]]; then
    log "FAILED: ${failed[*]} (see their logs in $out)"
    exit 1
fi
exit 0
