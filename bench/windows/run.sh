#!/usr/bin/env bash
# Windows as of each spine row's time: sluice's training set against DuckDB (a range join)
# and Polars (union and rolling).
#
# Usage: bash bench/windows/run.sh [options...]
#
#   --events N        events (default 10000000; entities: N / 500 within [100, 20000])
#   --spine N         spine rows (default 1000000)
#   --reps N          repetitions per tool (default 3)
#   --check-naive N   events in the sample checked against the naive reference first
#                     (default 20000; 0: skip)
#   --peers-only      DuckDB and Polars only, not sluice
#   --json-out FILE   the results as JSON
#
# Environment:
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli`
#   CARGO_TARGET_DIR  where that build goes (default: ~/.cache/sluice-target)
#   TMPDIR            where the virtualenv and the data (both reused) and the outputs (removed) live
#
# The peers are installed from PyPI into a throwaway virtualenv,
# ${TMPDIR:-/tmp}/sluice-windows-venv, made on first use and reused after. The data is made
# by make_data.py (deterministic) into ${TMPDIR:-/tmp}/sluice-windows-data/ and reused while
# it is there.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

events=10000000
spine=1000000
peers_only=0
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --events) events="${2:?--events needs a number}"; shift 2 ;;
        --spine) spine="${2:?--spine needs a number}"; shift 2 ;;
        --reps|--check-naive) args+=("$1" "${2:?$1 needs a number}"); shift 2 ;;
        --json-out) args+=("$1" "$(realpath -m "${2:?--json-out needs a file}")"); shift 2 ;;
        --peers-only) peers_only=1; args+=("$1"); shift ;;
        *) echo "run.sh: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
for n in "$events" "$spine"; do
    if ! [[ "$n" =~ ^[0-9]+$ ]]; then
        echo "run.sh: row counts must be whole numbers, not $n" >&2
        exit 2
    fi
done

# --- peers: a throwaway virtualenv, reused when it already has them ---------------
venv="$tmp_root/sluice-windows-venv"
if ! "$venv/bin/python" -c 'import duckdb, polars, pyarrow, numpy, pandas, psutil' 2>/dev/null; then
    echo "run.sh: installing DuckDB, Polars, pyarrow, numpy, pandas and psutil into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet duckdb polars pyarrow numpy pandas psutil
fi
py="$venv/bin/python"

# --- sluice -----------------------------------------------------------------------
source "$repo/bench/sluice_bin.sh"   # sets sluice_args

# --- inputs, made once and reused -------------------------------------------------
data="$tmp_root/sluice-windows-data/events-$events-spine-$spine"
if [[ ! -f "$data/expected.json" ]]; then
    "$py" "$here/make_data.py" "$data" --events "$events" --spine "$spine"
fi

work="$(mktemp -d "$tmp_root/sluice-windows-XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$py" "$here/bench.py" "${sluice_args[@]}" --scratch "$work" "${args[@]}" "$data"
