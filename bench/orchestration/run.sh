#!/usr/bin/env bash
# Orchestration overhead: sluice against Prefect 3 and Dagster on a chain and a fan-out of
# N + 1 tasks that do nothing (code steps running `true`; SQL tables `SELECT 1`).
#
# Usage: bash bench/orchestration/run.sh [options...]
#
#   --tasks N         N: each graph has N + 1 tasks, the root and N more (default 1000)
#   --reps N          repetitions per tool, graph and workload (default 3)
#   --graphs LIST     chain,fanout (default both)
#   --workloads LIST  noop,sql (default both)
#   --peers LIST      a subset of prefect,dagster,dagster-assets (default all)
#   --peers-only      the peers only, not sluice
#   --keep            keep the scratch directory (each run's project or Prefect home, its stdout
#                     and stderr) instead of removing it; its path is printed
#   --json-out FILE   the results as JSON
#
# Environment:
#   SLUICE_BIN        the sluice binary; if unset, `cargo build --release -p sluice-cli`
#   CARGO_TARGET_DIR  where that build goes (default: ~/.cache/sluice-target)
#   TMPDIR            where the virtualenv (reused) and the scratch directory (removed) live
#
# The peers are installed from PyPI into a throwaway virtualenv,
# ${TMPDIR:-/tmp}/sluice-orchestration-venv, made on first use and reused after.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"

peers_only=0
keep=0
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tasks|--reps)
            if ! [[ "${2:-}" =~ ^[0-9]+$ ]]; then
                echo "run.sh: $1 needs a whole number" >&2
                exit 2
            fi
            args+=("$1" "$2"); shift 2 ;;
        --graphs|--workloads|--peers) args+=("$1" "${2:?$1 needs a list}"); shift 2 ;;
        --json-out) args+=("$1" "$(realpath -m "${2:?--json-out needs a file}")"); shift 2 ;;
        --keep) keep=1; args+=("$1"); shift ;;
        --peers-only) peers_only=1; args+=("$1"); shift ;;
        *) echo "run.sh: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done

# --- peers: a throwaway virtualenv, reused when it already has them ---------------
venv="$tmp_root/sluice-orchestration-venv"
if ! "$venv/bin/python" -c 'import prefect, dagster, duckdb, pyarrow' 2>/dev/null; then
    echo "run.sh: installing Prefect 3, Dagster, DuckDB and pyarrow into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "prefect>=3,<4" dagster duckdb pyarrow
fi
py="$venv/bin/python"

# --- sluice -----------------------------------------------------------------------
source "$repo/bench/sluice_bin.sh"   # sets sluice_args

work="$(mktemp -d "$tmp_root/sluice-orchestration-XXXXXX")"
if [[ $keep -eq 1 ]]; then
    echo "run.sh: keeping the scratch directory $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
"$py" "$here/bench.py" "${sluice_args[@]}" --scratch "$work" "${args[@]}"
