#!/usr/bin/env python3
"""Make the user-events Parquet file for the `validate` benchmark, with planted bad rows.

The schema is the seed article's Pydantic ``UserEvent``:

    user_id     string     ``u`` + digits, 1..64 characters
    event_id    string     ``evt_`` + 16 alphanumerics, unique
    event_type  string     click / purchase / signup / logout / view
    event_date  timestamp  microseconds, UTC (the year 2025)
    age         int64      0..150
    email       string     like ``name123@example.com``
    amount      float64    >= 0, null for about 30% of the rows (never for a good purchase)

About 1% of the rows are bad. Each bad row breaks exactly one of the benchmark's nine
rules (see ``RULES``), at positions drawn from the seed, so the same arguments always give
the same file. A duplicated ``event_id`` is planted by copying another (good) row's id, so
both rows of each pair break ``unique``. The good rows include the boundary values (user_id
of 1 and 64 characters, age 0 and 150, amount 0.0), so a tool that gets an inclusive bound
wrong finds a different count.

Next to the Parquet file, ``<file>.expected.json`` records the row count, the number of
distinct bad rows, the number of rows that break each rule, and the positions (0-based row
numbers in file order) of the bad rows of each kind, so a benchmark can check every tool
found exactly those rows.

Usage:
    python make_data.py OUT.parquet [--rows 10000000] [--seed 20261122]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# The nine rules, in the contract's order. The key is `column.family` (the custom rule has
# its own name); every tool in the benchmark reports its violations under these keys.
RULES = [
    "user_id.required",  # not null
    "user_id.length",  # 1..64 characters
    "event_id.regex",  # ^evt_[a-zA-Z0-9]{16}$
    "event_id.unique",  # every row whose value occurs more than once
    "event_type.one_of",  # click, purchase, signup, logout, view
    "age.between",  # 0..150
    "email.regex",  # ^[\w\.-]+@[\w\.-]+\.\w+$
    "amount.min",  # >= 0, null passes
    "purchase_has_amount",  # event_type <> 'purchase' OR amount IS NOT NULL
]

# Each kind of bad row, the rule it breaks, and what is planted.
KINDS = [
    ("user_id_null", "user_id.required", "user_id is null"),
    ("user_id_empty", "user_id.length", 'user_id is ""'),
    ("user_id_too_long", "user_id.length", "user_id of 65 characters"),
    ("event_id_malformed", "event_id.regex", "event_id like evt_bad_format_000001"),
    ("event_id_duplicate", "event_id.unique", "event_id copied from another good row (both rows count)"),
    ("event_type_unknown", "event_type.one_of", 'event_type "hack"'),
    ("age_negative", "age.between", "age -5"),
    ("age_too_high", "age.between", "age 200"),
    ("email_malformed", "email.regex", 'email "not-an-email"'),
    ("amount_negative", "amount.min", "amount -10"),
    ("purchase_without_amount", "purchase_has_amount", "event_type purchase with a null amount"),
]

EVENT_TYPES = ["click", "purchase", "signup", "logout", "view"]
EVENT_TYPE_P = [0.30, 0.15, 0.10, 0.05, 0.40]
NAMES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe",
]
DOMAINS = ["example.com", "mail.example.org", "users.test-domain.net", "example.co.uk"]
ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
YEAR_START_US = 1_735_689_600 * 1_000_000  # 2025-01-01T00:00:00Z
YEAR_US = 365 * 86_400 * 1_000_000


def fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """An Arrow string array from an (n, width) uint8 matrix of ASCII bytes."""
    n, width = chars.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    ).cast(pa.string())


def replace_at(arr: pa.Array, positions: np.ndarray, values) -> pa.Array:
    """`arr` with the values at `positions` (sorted, distinct) replaced by `values` (in that order)."""
    if len(positions) == 0:
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    mask[positions] = True
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=arr.type)
    return pc.replace_with_mask(arr, pa.array(mask), values.cast(arr.type))


def make(rows: int, seed: int) -> tuple[pa.Table, dict]:
    if rows < 1000:
        raise SystemExit("make_data.py: --rows must be at least 1000")
    if rows > 900_000_000:
        raise SystemExit("make_data.py: --rows must be at most 900,000,000 (unique event ids)")
    rng = np.random.default_rng(seed)

    # --- where the bad rows (and a few boundary-valued good rows) go ------------------------
    per_kind = max(1, rows // 1100)  # 11 kinds: about 1% of the rows in all
    pairs = max(1, per_kind // 2)  # each duplicate pair is two bad rows
    boundary = max(1, rows // 10_000)
    counts = {name: (2 * pairs if name == "event_id_duplicate" else per_kind) for name, _, _ in KINDS}
    need = sum(counts.values()) + 5 * boundary
    picks = rng.choice(rows, size=need, replace=False)
    pos: dict[str, np.ndarray] = {}
    at = 0
    for name, _, _ in KINDS:
        pos[name] = picks[at: at + counts[name]]
        at += counts[name]
    dup_src, dup_dst = pos["event_id_duplicate"][:pairs], pos["event_id_duplicate"][pairs:]
    edge = {}
    for name in ("user_id_len1", "user_id_len64", "age_0", "age_150", "amount_0"):
        edge[name] = np.sort(picks[at: at + boundary])
        at += boundary
    pos = {k: np.sort(v) for k, v in pos.items()}

    # --- the good data ------------------------------------------------------------------------
    # user_id: "u" + 1..9 digits
    user_id = pc.binary_join_element_wise(
        "u", pc.cast(pa.array(rng.integers(0, 1_000_000_000, rows)), pa.string()), ""
    )
    # event_id: "evt_" + 16 alphanumerics; the last 5 are a permutation of the row number in
    # base 62, which makes every id unique.
    chars = np.empty((rows, 20), dtype=np.uint8)
    chars[:, :4] = np.frombuffer(b"evt_", dtype=np.uint8)
    chars[:, 4:15] = ALNUM[rng.integers(0, 62, (rows, 11))]
    serial = rng.permutation(rows)
    for i in range(5):
        chars[:, 19 - i] = ALNUM[serial % 62]
        serial //= 62
    event_id = fixed_width_strings(chars)
    del chars, serial
    type_idx = rng.choice(len(EVENT_TYPES), size=rows, p=EVENT_TYPE_P)
    event_type = pa.array(EVENT_TYPES).take(pa.array(type_idx))
    event_date = pa.array(YEAR_START_US + rng.integers(0, YEAR_US, rows)).cast(pa.timestamp("us", tz="UTC"))
    age = np.clip(np.rint(rng.normal(38, 15, rows)), 0, 150).astype(np.int64)
    email = pc.binary_join_element_wise(
        pa.array(NAMES).take(pa.array(rng.integers(0, len(NAMES), rows))),
        pc.cast(pa.array(rng.integers(0, 10_000, rows)), pa.string()),
        "@",
        pa.array(DOMAINS).take(pa.array(rng.integers(0, len(DOMAINS), rows))),
        "",
    )
    # amount: a purchase always has one (cents, > 0); other events have none 35% of the time
    # (about 30% of all rows), and otherwise 0.0 or a small amount.
    amount = np.round(rng.lognormal(3.0, 1.0, rows), 2) + 0.01
    is_purchase = type_idx == EVENT_TYPES.index("purchase")
    roll = rng.random(rows)
    amount[(~is_purchase) & (roll < 0.25)] = 0.0
    amount_null = (~is_purchase) & (roll >= 0.65)

    # --- boundary values among the good rows ----------------------------------------------
    user_id = replace_at(user_id, edge["user_id_len1"], ["u"] * boundary)
    long_ok = ["u" + f"{i:063d}" for i in range(boundary)]
    user_id = replace_at(user_id, edge["user_id_len64"], long_ok)
    age[edge["age_0"]] = 0
    age[edge["age_150"]] = 150
    amount[edge["amount_0"]] = 0.0
    amount_null[edge["amount_0"]] = False

    # --- the bad rows: each breaks exactly one rule -----------------------------------------
    user_id = replace_at(user_id, pos["user_id_null"], pa.nulls(counts["user_id_null"], pa.string()))
    user_id = replace_at(user_id, pos["user_id_empty"], [""] * counts["user_id_empty"])
    user_id = replace_at(user_id, pos["user_id_too_long"],
                         ["u" + f"{i:064d}" for i in range(counts["user_id_too_long"])])
    event_id = replace_at(event_id, pos["event_id_malformed"],
                          [f"evt_bad_format_{i:06d}" for i in range(counts["event_id_malformed"])])
    order = np.argsort(dup_dst)  # replace_with_mask fills the targets in row order
    event_id = replace_at(event_id, dup_dst[order], event_id.take(pa.array(dup_src[order])))
    event_type = replace_at(event_type, pos["event_type_unknown"], ["hack"] * counts["event_type_unknown"])
    age[pos["age_negative"]] = -5
    age[pos["age_too_high"]] = 200
    email = replace_at(email, pos["email_malformed"], ["not-an-email"] * counts["email_malformed"])
    amount[pos["amount_negative"]] = -10.0
    amount_null[pos["amount_negative"]] = False
    event_type = replace_at(event_type, pos["purchase_without_amount"], ["purchase"] * counts["purchase_without_amount"])
    amount_null[pos["purchase_without_amount"]] = True

    table = pa.table({
        "user_id": user_id,
        "event_id": event_id,
        "event_type": event_type,
        "event_date": event_date,
        "age": pa.array(age, type=pa.int64()),
        "email": email,
        "amount": pa.array(amount, type=pa.float64(), mask=amount_null),
    })

    rule_counts = {r: 0 for r in RULES}
    for name, rule, _ in KINDS:
        rule_counts[rule] += counts[name]
    bad_rows = sum(counts.values())
    expected = {
        "rows": rows,
        "seed": seed,
        "bad_rows": bad_rows,
        "rules": rule_counts,
        "table": {"row_count_between": [1, 20_000_000], "passes": 1 <= rows <= 20_000_000},
        "kinds": {
            name: {"rule": rule, "planted": what, "rows": counts[name], "positions": pos[name].tolist()}
            for name, rule, what in KINDS
        },
        "duplicate_pairs": sorted([int(s), int(d)] for s, d in zip(dup_src, dup_dst)),
    }
    return table, expected


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the Parquet file to write")
    ap.add_argument("--rows", type=int, default=10_000_000, help="number of rows (default 10,000,000)")
    ap.add_argument("--seed", type=int, default=20261122, help="random seed (default 20261122)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    table, expected = make(args.rows, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out, compression="zstd")
    expected["file"] = str(args.out.resolve())
    sidecar = args.out.with_name(args.out.name + ".expected.json")
    sidecar.write_text(json.dumps(expected) + "\n", encoding="utf-8")
    print(
        f"make_data.py: wrote {args.out} ({args.rows:,} rows, {expected['bad_rows']:,} bad, "
        f"{args.out.stat().st_size / 1e6:.1f} MB) and {sidecar.name} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
