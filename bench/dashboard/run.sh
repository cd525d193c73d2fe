#!/usr/bin/env bash
# How long each dashboard page takes, on the flights example: the bar is every
# page under 50 ms. A benchmark, not a test (no test asserts a time).
#
# Usage: bash bench/dashboard/run.sh [--reps N] [--keep] [--json-out FILE]
#
#   --reps N          requests per page (default 50), after 3 not timed
#   --keep            keep the work directory
#   --json-out FILE   also write the results as JSON
#
# Environment: SLUICE_BIN (else a release build, see bench/sluice_bin.sh); TMPDIR.
#
# It copies the flights example, runs it once (so every asset, the model and its
# predictions exist), creates an operator key, starts `sluice serve
# --no-scheduler` on a free port pinned to the last CPU, signs in through the
# dashboard's own form, and times every page a person opens — the overview,
# each asset, the runs, a run, the models, a model — from the request's first
# byte to the response's last, over loopback. There is no peer: Dagster's and
# Airflow's web servers do not read sluice's warehouse.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"
reps=50
keep=0
json_out=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reps) reps="${2:?}"; shift 2 ;;
        --keep) keep=1; shift ;;
        --json-out) json_out=(--json-out "$(realpath -m "${2:?--json-out needs a file}")"); shift 2 ;;
        *) echo "run.sh: unknown option $1 (see the top of $0)" >&2; exit 2 ;;
    esac
done
peers_only=0
source "$repo/bench/sluice_bin.sh"
bin="${sluice_args[1]}"

work="$(mktemp -d "$tmp_root/sluice-bench-dashboard.XXXXXX")"
cleanup() {
    [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null || true
    [[ $keep -eq 1 ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
cp -r "$repo/examples/flights/." "$work/"
rm -rf "$work/.sluice" "$work/exports"
(cd "$work" && "$bin" run >/dev/null 2>&1)
key="$(cd "$work" && "$bin" keys create --role operator --name bench | tail -1)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
last_cpu=$(( $(nproc) - 1 ))
(cd "$work" && exec taskset -c "$last_cpu" "$bin" serve --no-scheduler --listen "127.0.0.1:$port" 2>"$work/serve.log" >/dev/null) &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/serve.log" 2>/dev/null && break
    sleep 0.1
done
python3 "$here/bench.py" --url "http://127.0.0.1:$port" --key "$key" --reps "$reps" --project "$work" "${json_out[@]}"
