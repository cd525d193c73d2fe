#!/usr/bin/env bash
# Fuzz `sluice serve`'s REST API from its own OpenAPI document with Schemathesis: every
# operation in /openapi.json gets generated requests, valid and invalid; the run fails if
# any answer is a server error (5xx), if the server dies, or if it logs a panic.
#
# Usage: bash scripts/schemathesis.sh [--max-examples N] [--runs-examples N] [--seed N] [--keep]
#                                     [-- SCHEMATHESIS ARGS...]
#
#   --max-examples N  test cases per operation (default 50)
#   --runs-examples N also fuzz `POST /v1/runs` (left out by default: every call starts a
#                     pipeline run), in a second pass of N test cases (default 0: not at all)
#   --seed N          Schemathesis's random seed, to reproduce a run
#   --keep            keep the work directory (project, server log, Schemathesis reports)
#   -- ARGS...        passed on to `schemathesis run` (e.g. -- --checks all, --include-path ...)
#
# What it does: copies examples/flights into a temporary directory, runs `sluice run` on it
# (so every table, view and online record exists), creates an admin key (`sluice keys
# create --role admin`), starts `sluice serve` on a free loopback port, waits for /readyz,
# and runs
#   schemathesis run http://127.0.0.1:PORT/openapi.json --checks not_a_server_error \
#       --max-examples N -H "Authorization: Bearer KEY" --exclude-name "POST /v1/runs"
# `POST /v1/runs` (starting a run) is left out: each call is a whole pipeline run
# (`--runs-examples N` fuzzes it apart, with few cases).
# Nothing is built here.
#
# Environment:
#   SLUICE_BIN  the sluice binary (default ~/.cache/sluice-release/release/sluice, then
#               ~/.cache/sluice-target/debug/sluice)
#   TMPDIR      where the virtualenv (reused) and the work directory (removed) live
#
# Schemathesis comes from PyPI into ${TMPDIR:-/tmp}/sluice-schemathesis-venv, made on first
# use and reused; its CLI is version 4's (checked with 4.32.5).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp_root="${TMPDIR:-/tmp}"
max_examples=50
runs_examples=0
seed=""
keep=0
extra=()

log() { echo "schemathesis.sh: $*" >&2; }
die() { echo "schemathesis.sh: error: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --max-examples) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--max-examples needs a positive number"; max_examples=$2; shift 2 ;;
        --runs-examples) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--runs-examples needs a number"; runs_examples=$2; shift 2 ;;
        --seed) [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--seed needs a number"; seed=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

# --- sluice ------------------------------------------------------------------------------
if [[ -n "${SLUICE_BIN:-}" ]]; then
    sluice="$SLUICE_BIN"
elif [[ -x "$HOME/.cache/sluice-release/release/sluice" ]]; then
    sluice="$HOME/.cache/sluice-release/release/sluice"
elif [[ -x "$HOME/.cache/sluice-target/debug/sluice" ]]; then
    sluice="$HOME/.cache/sluice-target/debug/sluice"
else
    die "no sluice binary: set SLUICE_BIN or build one (cargo build -p sluice-cli)"
fi
[[ -x "$sluice" ]] || die "sluice binary $sluice is missing or not executable"
sluice="$(realpath "$sluice")"
"$sluice" serve --help >/dev/null 2>&1 || die "$sluice has no 'serve' command ('sluice serve --help' failed)"
command -v curl >/dev/null || die "curl is needed"
command -v setsid >/dev/null || die "setsid (util-linux) is needed"

# --- Schemathesis --------------------------------------------------------------------------
venv="$tmp_root/sluice-schemathesis-venv"
if ! "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
    log "installing Schemathesis into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet 'schemathesis>=4.1,<5'
fi
st="$venv/bin/schemathesis"
st_version="$("$st" --version 2>&1 | tail -1)"
[[ "$st_version" =~ version\ 4\. ]] || log "WARNING: $st_version; this script's flags are Schemathesis 4's"

# --- project, key, server ------------------------------------------------------------------
work="$(mktemp -d "$tmp_root/sluice-schemathesis-XXXXXX")"
server_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$server_pid" ]]; then
        kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$server_pid" 2>/dev/null || true
    fi
    if [[ $keep -eq 1 || $rc -ne 0 ]]; then
        log "the work directory is kept: $work (serve.log, report/)"
    else
        rm -rf "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

proj="$work/flights"
mkdir -p "$proj"
(cd "$repo/examples/flights" && tar cf - --exclude=./.sluice .) | (cd "$proj" && tar xf -)
log "sluice run on a copy of examples/flights"
"$sluice" --project "$proj" run >"$work/run.log" 2>&1 || { tail -30 "$work/run.log" >&2; die "sluice run failed"; }
key=$("$sluice" --project "$proj" keys create --role admin --name schemathesis 2>"$work/keys.log" | grep -E '^sk_' | tail -1 || true)
[[ -n "$key" ]] || { cat "$work/keys.log" >&2; die "sluice keys create --role admin printed no sk_... key on a line by itself"; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
(exec setsid "$sluice" --project "$proj" serve --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 </dev/null) &
server_pid=$!
t0=$SECONDS
until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Authorization: Bearer $key" "$base/readyz" || true)" == 200 ]]; do
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$work/serve.log" >&2; die "sluice serve exited before it was ready"; }
    (( SECONDS - t0 < 60 )) || { tail -20 "$work/serve.log" >&2; die "sluice serve: $base/readyz did not answer 200 within 60 s"; }
    sleep 0.25
done
curl -sf -H "Authorization: Bearer $key" "$base/openapi.json" -o "$work/openapi.json" \
    || die "GET $base/openapi.json failed"
log "sluice serve is ready at $base; $st_version, $max_examples examples per operation"

# --- fuzz -----------------------------------------------------------------------------------
common=(--checks not_a_server_error
    --header "Authorization: Bearer $key"
    --request-timeout 60
    --workers 1
    --no-color)
[[ -n "$seed" ]] && common+=(--seed "$seed")
status=0
"$st" run "$base/openapi.json" "${common[@]}" --max-examples "$max_examples" --exclude-name "POST /v1/runs" \
    --report junit --report-dir "$work/report" "${extra[@]}" || status=$?
if [[ $runs_examples -gt 0 ]]; then
    log "POST /v1/runs: $runs_examples examples"
    "$st" run "$base/openapi.json" "${common[@]}" --max-examples "$runs_examples" --include-name "POST /v1/runs" \
        --phases examples,coverage,fuzzing --report junit --report-dir "$work/report-runs" "${extra[@]}" || status=$?
fi

# A server error can also be a crash or a panic caught by the server: check both.
if ! kill -0 "$server_pid" 2>/dev/null; then
    log "FAILED: sluice serve died during the run; the last lines of its log:"
    tail -30 "$work/serve.log" >&2
    status=1
elif grep -n -m 5 -E 'panicked at|RUST_BACKTRACE' "$work/serve.log" >&2; then
    log "FAILED: sluice serve logged a panic (above; the whole log: $work/serve.log)"
    status=1
fi
if [[ $status -eq 0 ]]; then
    log "no server errors"
else
    log "FAILED (exit $status); the Schemathesis JUnit report is in $work/report"
fi
exit $status
