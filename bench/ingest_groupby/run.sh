#!/usr/bin/env bash
# Ingest the flights CSV and build a grouped table: sluice against DuckDB and Polars.
#
# Usage: bash bench/ingest_groupby/run.sh [FLIGHTS_CSV] [bench.py options...]
#
#   FLIGHTS_CSV  default: the repository's examples/flights/data/flights.parquet,
#                written as CSV (by pyarrow) into the scratch directory
#   options      passed to bench.py, e.g. --reps 5, --json-out results.json, --peers-only
#
# Environment:
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli`
#   CARGO_TARGET_DIR  where that build goes (default: ~/.cache/sluice-target)
#   TMPDIR            where the virtualenv (reused) and the 10x CSV (removed) live
#
# The peers are installed from PyPI into a throwaway virtualenv,
# ${TMPDIR:-/tmp}/sluice-bench-venv, made on first use and reused after.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

csv=""
if [[ $# -gt 0 && "$1" != -* ]]; then
    csv="$1"
    shift
    if [[ ! -f "$csv" ]]; then
        echo "run.sh: no input CSV at $csv" >&2
        exit 2
    fi
    csv="$(cd "$(dirname "$csv")" && pwd)/$(basename "$csv")"
fi

peers_only=0
for arg in "$@"; do
    [[ "$arg" == "--peers-only" ]] && peers_only=1
done

# --- peers: a throwaway virtualenv, reused when it already has them ---------------
venv="$tmp_root/sluice-bench-venv"
if ! "$venv/bin/python" -c 'import duckdb, polars, pyarrow' 2>/dev/null; then
    echo "run.sh: installing duckdb, polars and pyarrow into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet duckdb polars pyarrow
fi

# --- sluice -----------------------------------------------------------------------
source "$repo/bench/sluice_bin.sh"   # sets sluice_args

# --- inputs: the CSV as is, and 10x its rows (header once) -------------------------
work="$(mktemp -d "$tmp_root/sluice-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
if [[ -z "$csv" ]]; then
    # The repository's own copy of the data, as CSV: nothing outside the repository is needed.
    csv="$work/flights.csv"
    # Nulls are written as NA, the marker every reader below is given (pyarrow's
    # default, an empty field, made DuckDB type dep_delay as text).
    "$venv/bin/python" -c 'import sys, pyarrow.parquet as pq, pyarrow.csv as pc; pc.write_csv(pq.read_table(sys.argv[1]), sys.argv[2], pc.WriteOptions(null_string="NA"))' \
        "$repo/examples/flights/data/flights.parquet" "$csv"
fi
scaled="$work/flights_x10.csv"
# awk ends every line with a newline, so a file without a final one still joins cleanly.
files=()
for _ in 1 2 3 4 5 6 7 8 9 10; do files+=("$csv"); done
awk 'FNR == 1 && NR != 1 { next } { print }' "${files[@]}" > "$scaled"

"$venv/bin/python" "$here/bench.py" "${sluice_args[@]}" --scratch "$work/scratch" "$@" "$csv" "$scaled"
