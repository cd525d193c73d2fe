#!/usr/bin/env bash
# Read a PostgreSQL table into a published asset: sluice against ConnectorX,
# ADBC's PostgreSQL driver and pandas `read_sql`.
#
# Usage: bash bench/connectors/run.sh [bench.py options...]
#
#   options  passed to bench.py: --rows N (default 10,000,000), --reps N
#            (default 1), --json-out FILE, --peers-only
#
# Environment:
#   BENCH_PG_URL      the database (default postgres://postgres@127.0.0.1:5432/test);
#                     the table is made there once per row count, in schema sluice_bench
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli`
#   CARGO_TARGET_DIR  where that build goes (default: ~/.cache/sluice-target)
#   TMPDIR            where the virtualenv (reused) and the scratch files (removed) live
#
# The peers are installed from PyPI into a throwaway virtualenv,
# ${TMPDIR:-/tmp}/sluice-bench-connectors-venv, made on first use and reused after.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

peers_only=0
for arg in "$@"; do
    [[ "$arg" == "--peers-only" ]] && peers_only=1
done

venv="$tmp_root/sluice-bench-connectors-venv"
if ! "$venv/bin/python" -c 'import connectorx, adbc_driver_postgresql.dbapi, pandas, sqlalchemy, psycopg2, pyarrow' 2>/dev/null; then
    echo "run.sh: installing connectorx, adbc-driver-postgresql, pandas, SQLAlchemy, psycopg2-binary and pyarrow into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet connectorx adbc-driver-postgresql adbc-driver-manager \
        pandas sqlalchemy psycopg2-binary pyarrow
fi

source "$repo/bench/sluice_bin.sh"   # sets sluice_args

work="$(mktemp -d "$tmp_root/sluice-bench-XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" "$here/bench.py" "${sluice_args[@]}" --scratch "$work" "$@"
