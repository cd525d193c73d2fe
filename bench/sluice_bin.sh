# Sourced by each benchmark's run.sh (which sets $repo and $peers_only): sets
# sluice_args to (--sluice-bin PATH), building sluice (release) into
# $CARGO_TARGET_DIR when SLUICE_BIN is unset; empty with --peers-only.
sluice_args=()
if [[ $peers_only -eq 0 ]]; then
    if [[ -z "${SLUICE_BIN:-}" ]]; then
        export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice-target}"
        echo "run.sh: building sluice (release) into $CARGO_TARGET_DIR" >&2
        (cd "$repo" && cargo build --release -p sluice-cli)
        SLUICE_BIN="$CARGO_TARGET_DIR/release/sluice"
    fi
    if [[ ! -x "$SLUICE_BIN" ]]; then
        echo "run.sh: sluice binary $SLUICE_BIN is missing or not executable" >&2
        exit 2
    fi
    sluice_args=(--sluice-bin "$SLUICE_BIN")
fi
