#!/usr/bin/env bash
# Validate 10M user events against nine rules: sluice against Great Expectations, Pandera,
# Pydantic and DuckDB.
#
# Usage: bash bench/validate/run.sh [--rows N] [bench.py options...]
#
#   --rows N   rows of the generated events file (default 10000000)
#   options    passed to bench.py, e.g. --reps 1, --json-out results.json, --peers-only,
#              --peers duckdb,pandera, --pydantic-rows 1000000 (sample Pydantic, extrapolate)
#
# Environment:
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli`
#   CARGO_TARGET_DIR  where that build goes (default: ~/.cache/sluice-target)
#   TMPDIR            where the virtualenv and the data (both reused) and the outputs (removed) live
#
# The peers are installed from PyPI into a throwaway virtualenv,
# ${TMPDIR:-/tmp}/sluice-validate-venv, made on first use and reused after. The data is
# made by make_data.py (deterministic) into ${TMPDIR:-/tmp}/sluice-validate-data/ and
# reused while it is there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

rows=10000000
peers_only=0
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rows) rows="${2:?--rows needs a number}"; shift 2 ;;
        --rows=*) rows="${1#--rows=}"; shift ;;
        --peers-only) peers_only=1; args+=("$1"); shift ;;
        *) args+=("$1"); shift ;;
    esac
done
if ! [[ "$rows" =~ ^[0-9]+$ ]]; then
    echo "run.sh: --rows must be a whole number, not $rows" >&2
    exit 2
fi

# --- peers: a throwaway virtualenv, reused when it already has them ---------------
venv="$tmp_root/sluice-validate-venv"
if ! "$venv/bin/python" -c 'import great_expectations, pandera.polars, pydantic, polars, pandas, pyarrow, duckdb, numpy' 2>/dev/null; then
    echo "run.sh: installing Great Expectations, Pandera, Pydantic, Polars, pandas, pyarrow and DuckDB into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "great_expectations>=1,<2" "pandera[polars]" "pydantic>=2,<3" \
        polars pandas pyarrow duckdb numpy
fi

# --- sluice -----------------------------------------------------------------------
source "$repo/bench/sluice_bin.sh"   # sets sluice_args

# --- input: the events file, made once per row count and reused ------------------
data_dir="$tmp_root/sluice-validate-data"
data="$data_dir/events-$rows.parquet"
if [[ ! -f "$data" || ! -f "$data.expected.json" ]]; then
    mkdir -p "$data_dir"
    "$venv/bin/python" "$here/make_data.py" "$data" --rows "$rows"
fi

work="$(mktemp -d "$tmp_root/sluice-validate-XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$venv/bin/python" "$here/bench.py" "${sluice_args[@]}" --scratch "$work/scratch" "${args[@]}" "$data"
