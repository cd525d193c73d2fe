#!/usr/bin/env bash
# Feature views: sluice against Polars, pandas and DuckDB (features_a), Feast and DuckDB
# (features_b: training set), Feast (features_c: online store).
#
# Usage: bash bench/features/run.sh [--which a,b,c] [--rows N[,N...]] [options...]
#
#   --which LIST        benchmarks to run, of a, b, c (default: a,b,c)
#   --rows LIST         features_a: the event counts (default 1000000,10000000); features_b
#                       and _c: the largest of them is the number of feature rows
#   --feature-rows N    features_b and _c: the feature rows, instead of the largest --rows
#   --spine-rows N      features_b: the spine rows (default: feature rows / 10)
#   --feast-rows N      features_b and _c: run Feast on a sample of the entities holding about
#                       N feature rows and extrapolate its time (default: all rows, except
#                       2000000 for features_b when there are more: Feast's training set
#                       needs ~3.5 GB per 1M rows; 0 = all rows for both)
#   --feast-spine N     features_b: the same, by spine rows
#   --feast-mem-limit G features_b and _c: cap Feast's address space at G GB (default 80% of
#                       the memory), so that running out of memory fails Feast alone
#   --reps N            repetitions per tool (default 3)
#   --peers-only        the peers only, not sluice
#   --json-out FILE     all results as one JSON document
#
# Environment:
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli`
#   CARGO_TARGET_DIR  where that build goes (default: ~/.cache/sluice-target)
#   TMPDIR            where the virtualenv and the data (both reused) and the outputs (removed) live
#
# The peers are installed from PyPI into a throwaway virtualenv,
# ${TMPDIR:-/tmp}/sluice-features-venv, made on first use and reused after. The data is
# made by make_data.py (deterministic) into ${TMPDIR:-/tmp}/sluice-features-data/ and
# reused while it is there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

which="a,b,c"
rows="1000000,10000000"
feature_rows=""
spine_rows=""
feast_rows=""
feast_spine=""
json_out=""
feast_mem=()
peers_only=0
common=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --which) which="${2:?--which needs a list}"; shift 2 ;;
        --which=*) which="${1#--which=}"; shift ;;
        --rows) rows="${2:?--rows needs a number}"; shift 2 ;;
        --rows=*) rows="${1#--rows=}"; shift ;;
        --feature-rows) feature_rows="${2:?}"; shift 2 ;;
        --spine-rows) spine_rows="${2:?}"; shift 2 ;;
        --feast-rows) feast_rows="${2:?}"; shift 2 ;;
        --feast-spine) feast_spine="${2:?}"; shift 2 ;;
        --feast-mem-limit) feast_mem=(--feast-mem-limit "${2:?}"); shift 2 ;;
        --json-out) json_out="${2:?}"; shift 2 ;;
        --reps) common+=("$1" "${2:?--reps needs a number}"); shift 2 ;;
        --peers-only) peers_only=1; common+=("$1"); shift ;;
        *) echo "run.sh: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
for n in ${rows//,/ } $feature_rows $spine_rows $feast_rows $feast_spine; do
    if ! [[ "$n" =~ ^[0-9]+$ ]]; then
        echo "run.sh: row counts must be whole numbers, not $n" >&2
        exit 2
    fi
done
for b in ${which//,/ }; do
    [[ "$b" =~ ^[abc]$ ]] || { echo "run.sh: --which takes a, b and c, not $b" >&2; exit 2; }
done
if [[ -z "$feature_rows" ]]; then
    feature_rows=$(printf '%s\n' ${rows//,/ } | sort -n | tail -1)
fi
if [[ -z "$spine_rows" ]]; then
    spine_rows=$(( feature_rows / 10 > 1000 ? feature_rows / 10 : 1000 ))
fi
feast_b=()
feast_c=()
if [[ -n "$feast_rows" && "$feast_rows" != 0 ]]; then
    feast_b+=(--feast-rows "$feast_rows")
    feast_c+=(--feast-rows "$feast_rows")
elif [[ -z "$feast_rows" && -z "$feast_spine" && $feature_rows -gt 2000000 ]]; then
    feast_b+=(--feast-rows 2000000)   # the training set: all 10M rows would need ~35 GB
fi
if [[ -n "$feast_spine" && "$feast_spine" != 0 ]]; then
    feast_b+=(--feast-spine "$feast_spine")
fi

# --- peers: a throwaway virtualenv, reused when it already has them ---------------
venv="$tmp_root/sluice-features-venv"
if ! "$venv/bin/python" -c 'import polars, pandas, duckdb, pyarrow, numpy, feast, psutil' 2>/dev/null; then
    echo "run.sh: installing Polars, pandas, DuckDB, pyarrow, numpy, Feast and psutil into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet polars pandas duckdb pyarrow numpy feast psutil
fi
py="$venv/bin/python"
export FEAST_USAGE=False PYTHONWARNINGS=ignore

# --- sluice -----------------------------------------------------------------------
source "$repo/bench/sluice_bin.sh"   # sets sluice_args

# --- inputs, made once and reused -------------------------------------------------
data_dir="$tmp_root/sluice-features-data"
mkdir -p "$data_dir"
events_file() {  # the events file of features_a for $1 rows
    local f="$data_dir/events-$1.parquet"
    [[ -f "$f" ]] || "$py" "$here/make_data.py" events "$f" --rows "$1"
    echo "$f"
}
features_dir() {  # the feature rows and spine of features_b and _c
    local d="$data_dir/features-$feature_rows-$spine_rows"
    [[ -f "$d/expected.json" ]] || "$py" "$here/make_data.py" features "$d" --rows "$feature_rows" --spine-rows "$spine_rows" >&2
    echo "$d"
}

work="$(mktemp -d "$tmp_root/sluice-features-XXXXXX")"
trap 'rm -rf "$work"' EXIT

status=0
parts=()
for b in ${which//,/ }; do
    echo "=== features_$b ===" >&2
    out=(--json-out "$work/features_$b.json")
    case "$b" in
        a)
            files=()
            for n in ${rows//,/ }; do files+=("$(events_file "$n")"); done
            "$py" "$here/features_a.py" "${sluice_args[@]}" --scratch "$work/a" "${out[@]}" "${common[@]}" "${files[@]}" || status=1
            ;;
        b)
            "$py" "$here/features_b.py" "${sluice_args[@]}" --scratch "$work/b" "${out[@]}" "${common[@]}" "${feast_b[@]}" "${feast_mem[@]}" \
                "$(features_dir)" || status=1
            ;;
        c)
            "$py" "$here/features_c.py" "${sluice_args[@]}" --scratch "$work/c" "${out[@]}" "${common[@]}" "${feast_c[@]}" "${feast_mem[@]}" \
                "$(features_dir)" || status=1
            ;;
    esac
    [[ -f "$work/features_$b.json" ]] && parts+=("$work/features_$b.json")
    echo
done

if [[ -n "$json_out" && ${#parts[@]} -gt 0 ]]; then
    "$py" -c 'import json, sys; json.dump({json.load(open(p))["benchmark"]: json.load(open(p)) for p in sys.argv[2:]}, open(sys.argv[1], "w"), indent=2)' \
        "$json_out" "${parts[@]}"
fi
exit $status
