#!/usr/bin/env python3
"""Validate 10 million user events against nine rules: sluice against Great Expectations,
Pandera, Pydantic and DuckDB.

Every tool checks the same Parquet file (made by ``make_data.py``) against the same rules
and writes the rows that break any rule (the quarantine) to zstd Parquet:

    1. user_id required (not null)          6. age between 0 and 150
    2. user_id length between 1 and 64      7. email matches ^[\\w\\.-]+@[\\w\\.-]+\\.\\w+$
    3. event_id matches ^evt_[a-zA-Z0-9]{16}$
    4. event_id unique (every row of a duplicated value fails)
    5. event_type in click/purchase/signup/logout/view
    8. amount >= 0 (null passes)
    9. event_type <> 'purchase' OR amount IS NOT NULL (a custom row rule)
    and the table expectation: row count between 1 and 20,000,000.

A null value passes every rule but ``required`` (SQL semantics), in every tool.

Each peer's time is split into load (the Parquet into its frame or records) and validate
(the checks, gathering the rejected rows, and writing them to Parquet). sluice runs as a
subprocess three times per repetition: with the contract (read, validate, write the
quarantine and the passed rows as Delta tables); with a contract of the row-count
expectation alone (read, count, write every row through the same gate: the baseline); and
without a contract (read, store the file as a copy of its Parquet). The first minus the
baseline is sluice's validation cost.

Usage (normally through run.sh, which makes the virtualenv and the data):

    python bench.py --sluice-bin PATH [--reps 3] DATA.parquet
    python bench.py --peers-only [--pydantic-rows 1000000] DATA.parquet

``DATA.parquet.expected.json`` (written by make_data.py) gives the number of rows that
break each rule and their positions. Every tool must find exactly those rows (sluice:
those counts) before any time is printed; any disagreement or failure exits non-zero.
"""

from __future__ import annotations

import os

# Great Expectations would otherwise try to send usage statistics (there is no network).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import argparse
import gc
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

import duckdb
import great_expectations as gx
import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
import pandera
import pandera.polars as pa
import polars as pl
import pyarrow
import pyarrow.parquet as pq
import pydantic
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.row_conditions import Column as GxColumn
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import BenchError, find_delta_table, parse_sluice_json, read_delta_table, sluice_version, sql_str  # noqa: E402
from make_data import RULES  # noqa: E402  (the rule keys, in the contract's order)

USER_ID_MIN, USER_ID_MAX = 1, 64
EVENT_ID_RE = r"^evt_[a-zA-Z0-9]{16}$"
EVENT_TYPES = ["click", "purchase", "signup", "logout", "view"]
EVENT_TYPE_SET = frozenset(EVENT_TYPES)
AGE_MIN, AGE_MAX = 0, 150
EMAIL_RE = r"^[\w\.-]+@[\w\.-]+\.\w+$"
AMOUNT_MIN = 0
ROW_COUNT_MIN, ROW_COUNT_MAX = 1, 20_000_000
CUSTOM_RULE = "purchase_has_amount"
CUSTOM_CHECK = "event_type <> 'purchase' OR amount IS NOT NULL"
COLUMNS = ["user_id", "event_id", "event_type", "event_date", "age", "email", "amount"]

CONTRACT_TOML = f"""
[sources.events.contract.columns.user_id]
required = true
min_length = {USER_ID_MIN}
max_length = {USER_ID_MAX}

[sources.events.contract.columns.event_id]
regex = '{EVENT_ID_RE}'
unique = true

[sources.events.contract.columns.event_type]
one_of = {json.dumps(EVENT_TYPES)}

[sources.events.contract.columns.age]
min = {AGE_MIN}
max = {AGE_MAX}

[sources.events.contract.columns.email]
regex = '{EMAIL_RE}'

[sources.events.contract.columns.amount]
min = {AMOUNT_MIN}

[[sources.events.contract.rules]]
name = "{CUSTOM_RULE}"
check = "{CUSTOM_CHECK}"

[[sources.events.contract.expect]]
row_count = {{ min = {ROW_COUNT_MIN}, max = {ROW_COUNT_MAX} }}
"""


@dataclass
class Expected:
    rows: int
    bad_rows: int
    rules: dict[str, int]
    positions: dict[str, np.ndarray]  # rule key -> sorted row numbers that break it
    duplicate_pairs: np.ndarray  # (k, 2) row numbers sharing one event_id

    @classmethod
    def load(cls, data: Path) -> "Expected":
        sidecar = data.with_name(data.name + ".expected.json")
        if not sidecar.is_file():
            raise SystemExit(f"bench.py: no {sidecar} (make the data with make_data.py)")
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
        if list(doc["rules"]) != RULES:
            raise SystemExit(f"bench.py: {sidecar} has rules {list(doc['rules'])}, expected {RULES}")
        positions: dict[str, list[int]] = {r: [] for r in RULES}
        for kind in doc["kinds"].values():
            positions[kind["rule"]].extend(kind["positions"])
        pos = {r: np.unique(np.asarray(p, dtype=np.int64)) for r, p in positions.items()}
        for r in RULES:
            if len(pos[r]) != doc["rules"][r]:
                raise SystemExit(f"bench.py: {sidecar} is inconsistent for rule {r}")
        return cls(doc["rows"], doc["bad_rows"], doc["rules"], pos,
                   np.asarray(doc["duplicate_pairs"], dtype=np.int64).reshape(-1, 2))

    def bad_positions(self) -> np.ndarray:
        return np.unique(np.concatenate(list(self.positions.values())))

    def prefix(self, n: int) -> "Expected":
        """What the first `n` rows break, uniqueness judged within those rows only."""
        pos = {r: p[p < n] for r, p in self.positions.items()}
        pairs = self.duplicate_pairs[(self.duplicate_pairs < n).all(axis=1)]
        pos["event_id.unique"] = np.unique(pairs.ravel())
        rules = {r: len(p) for r, p in pos.items()}
        bad = len(np.unique(np.concatenate(list(pos.values()))))
        return Expected(n, bad, rules, pos, pairs)


@dataclass
class PeerRun:
    """One repetition of one peer."""
    load_s: float
    validate_s: float
    rows_checked: int
    counts: dict[str, int]  # rule key -> rows that break it
    rejected: np.ndarray  # sorted row numbers written to the quarantine
    quarantine_rows: int  # rows in the Parquet file it wrote
    table_ok: bool  # the row-count expectation


@dataclass
class Result:
    tool: str
    load: list[float] = field(default_factory=list)
    validate: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    scale: float = 1.0  # > 1 when the tool ran on a sample and its times are extrapolated
    sample_rows: Optional[int] = None
    note: str = ""

    def add(self, load: Optional[float], validate: Optional[float], total: float) -> None:
        if load is not None:
            self.load.append(load * self.scale)
        if validate is not None:
            self.validate.append(validate * self.scale)
        self.total.append(total * self.scale)


def best(xs: list[float]) -> Optional[float]:
    return min(xs) if xs else None


def median(xs: list[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def counts_from_index_sets(sets: dict[str, np.ndarray]) -> tuple[dict[str, int], np.ndarray]:
    counts = {r: int(len(np.unique(sets.get(r, np.empty(0, np.int64))))) for r in RULES}
    parts = [np.asarray(v, dtype=np.int64) for v in sets.values()]
    rejected = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
    return counts, rejected


# --------------------------------------------------------------------------- Great Expectations


def gx_suite() -> gx.ExpectationSuite:
    """The nine rules and the row count, each tagged with its rule key in `meta`."""
    exps = [
        ("user_id.required", gxe.ExpectColumnValuesToNotBeNull(column="user_id")),
        ("user_id.length", gxe.ExpectColumnValueLengthsToBeBetween(
            column="user_id", min_value=USER_ID_MIN, max_value=USER_ID_MAX)),
        ("event_id.regex", gxe.ExpectColumnValuesToMatchRegex(column="event_id", regex=EVENT_ID_RE)),
        ("event_id.unique", gxe.ExpectColumnValuesToBeUnique(column="event_id")),
        ("event_type.one_of", gxe.ExpectColumnValuesToBeInSet(column="event_type", value_set=EVENT_TYPES)),
        ("age.between", gxe.ExpectColumnValuesToBeBetween(column="age", min_value=AGE_MIN, max_value=AGE_MAX)),
        ("email.regex", gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL_RE)),
        ("amount.min", gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=AMOUNT_MIN)),
        # The custom rule as a conditional expectation: among purchases, amount is not null.
        (CUSTOM_RULE, gxe.ExpectColumnValuesToNotBeNull(
            column="amount", row_condition=GxColumn("event_type") == "purchase")),
        ("table.row_count", gxe.ExpectTableRowCountToBeBetween(min_value=ROW_COUNT_MIN, max_value=ROW_COUNT_MAX)),
    ]
    suite = gx.ExpectationSuite(name="events")
    for key, exp in exps:
        exp.meta = {"rule": key}
        suite.add_expectation(exp)
    return suite


def run_great_expectations(data: Path, work: Path, exp: Expected) -> PeerRun:
    t0 = time.perf_counter()
    df = pd.read_parquet(data)
    t1 = time.perf_counter()

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("pandas")
    asset = source.add_dataframe_asset(name="events")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    suite = context.suites.add(gx_suite())
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    sets: dict[str, np.ndarray] = {}
    table_ok = None
    for r in result.results:
        key = (r.expectation_config.meta or {}).get("rule")
        info = r.exception_info or {}
        if info.get("raised_exception"):
            raise BenchError(f"great_expectations: {key} raised: {info.get('exception_message')}")
        if key == "table.row_count":
            table_ok = bool(r.success)
            continue
        idx = r.result.get("unexpected_index_list")
        if idx is None:
            raise BenchError(f"great_expectations: {key} returned no unexpected_index_list")
        sets[key] = np.asarray(idx, dtype=np.int64)
    counts, rejected = counts_from_index_sets(sets)
    # The frame has a RangeIndex, so index labels are row positions.
    out = work / "quarantine.parquet"
    df.iloc[rejected].to_parquet(out, compression="zstd", index=False)
    t2 = time.perf_counter()
    return PeerRun(t1 - t0, t2 - t1, len(df), counts, rejected, pq.read_metadata(out).num_rows, bool(table_ok))


# --------------------------------------------------------------------------- Pandera (polars)


def pandera_schema() -> pa.DataFrameSchema:
    return pa.DataFrameSchema(
        {
            "user_id": pa.Column(pl.Utf8, nullable=False, checks=pa.Check.str_length(USER_ID_MIN, USER_ID_MAX)),
            "event_id": pa.Column(pl.Utf8, unique=True, checks=pa.Check.str_matches(EVENT_ID_RE)),
            "event_type": pa.Column(pl.Utf8, checks=pa.Check.isin(EVENT_TYPES)),
            "event_date": pa.Column(pl.Datetime("us", "UTC")),
            "age": pa.Column(pl.Int64, checks=pa.Check.in_range(AGE_MIN, AGE_MAX)),
            "email": pa.Column(pl.Utf8, checks=pa.Check.str_matches(EMAIL_RE)),
            "amount": pa.Column(pl.Float64, nullable=True, checks=pa.Check.ge(AMOUNT_MIN)),
        },
        checks=[
            pa.Check(
                lambda d: d.lazyframe.select(
                    (pl.col("event_type") != "purchase") | pl.col("amount").is_not_null()
                ),
                name=CUSTOM_RULE,
            ),
            pa.Check(
                lambda d: ROW_COUNT_MIN <= d.lazyframe.select(pl.len()).collect().item() <= ROW_COUNT_MAX,
                name="row_count_between",
            ),
        ],
    )


# Pandera's name of a failed check (its `check` column) -> rule family.
PANDERA_FAMILY = [
    ("not_nullable", "required"),
    ("field_uniqueness", "unique"),
    ("str_length", "length"),
    ("str_matches", "regex"),
    ("isin", "one_of"),
    ("in_range", "between"),
    ("greater_than_or_equal_to", "min"),
]


def pandera_rule_key(column: Optional[str], check: str) -> str:
    if check in (CUSTOM_RULE, "row_count_between"):
        return check if check == CUSTOM_RULE else "table.row_count"
    for prefix, family in PANDERA_FAMILY:
        if check.startswith(prefix):
            return f"{column}.{family}"
    raise BenchError(f"pandera: unexpected failed check {check!r} on column {column!r}")


def run_pandera(data: Path, work: Path, exp: Expected) -> PeerRun:
    schema = pandera_schema()
    t0 = time.perf_counter()
    df = pl.read_parquet(data)
    t1 = time.perf_counter()
    failures = None
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        failures = e.failure_cases
    sets: dict[str, np.ndarray] = {}
    table_ok = True
    if failures is not None:
        groups = failures.group_by("column", "check").agg(pl.col("index"))
        for column, check, idx in groups.iter_rows():
            key = pandera_rule_key(column, check)
            if key == "table.row_count":
                table_ok = False
                continue
            if key not in RULES:
                raise BenchError(f"pandera: failed check {check!r} on {column!r} is no benchmark rule")
            if any(i is None for i in idx):
                raise BenchError(f"pandera: failure cases of {key} have no row index")
            sets[key] = np.asarray(idx, dtype=np.int64)
    counts, rejected = counts_from_index_sets(sets)
    out = work / "quarantine.parquet"
    df[rejected].write_parquet(out, compression="zstd")
    t2 = time.perf_counter()
    return PeerRun(t1 - t0, t2 - t1, df.height, counts, rejected, pq.read_metadata(out).num_rows, table_ok)


# --------------------------------------------------------------------------- Pydantic (per record)


class Event(BaseModel):
    user_id: str = Field(min_length=USER_ID_MIN, max_length=USER_ID_MAX)
    event_id: str = Field(pattern=EVENT_ID_RE)
    event_type: str
    event_date: datetime
    age: int = Field(ge=AGE_MIN, le=AGE_MAX)
    email: str = Field(pattern=EMAIL_RE)
    amount: Optional[float] = Field(default=None, ge=AMOUNT_MIN)

    @field_validator("event_type")
    @classmethod
    def one_of(cls, value: str) -> str:
        # A Literal[...] type does the same in pydantic-core; at 1M rows both took the same time.
        if value not in EVENT_TYPE_SET:
            raise ValueError(f"event_type must be one of {EVENT_TYPES}")
        return value

    @model_validator(mode="after")
    def purchase_has_amount(self) -> "Event":
        if self.event_type == "purchase" and self.amount is None:
            raise ValueError("a purchase must have an amount")
        return self


# (field, pydantic error type) -> rule key; the model validator's error has an empty loc.
PYDANTIC_ERRORS = {
    ("user_id", "string_type"): "user_id.required",  # None where a str is required
    ("user_id", "missing"): "user_id.required",
    ("user_id", "string_too_short"): "user_id.length",
    ("user_id", "string_too_long"): "user_id.length",
    ("event_id", "string_pattern_mismatch"): "event_id.regex",
    ("event_type", "value_error"): "event_type.one_of",
    ("age", "greater_than_equal"): "age.between",
    ("age", "less_than_equal"): "age.between",
    ("email", "string_pattern_mismatch"): "email.regex",
    ("amount", "greater_than_equal"): "amount.min",
    ("", "value_error"): CUSTOM_RULE,
}

PYDANTIC_CHUNK = 500_000  # records made at once (to_dicts), to bound memory


def run_pydantic(data: Path, work: Path, exp: Expected, limit: Optional[int]) -> PeerRun:
    load_s = validate_s = 0.0
    t = time.perf_counter()
    df = pl.read_parquet(data, n_rows=limit)  # a sample reads only its rows
    load_s += time.perf_counter() - t

    validate = Event.model_validate
    bad: dict[str, list[int]] = {r: [] for r in RULES}
    first_row: dict[str, int] = {}  # event_id -> first row that has it
    duplicated: set[int] = set()
    for start in range(0, df.height, PYDANTIC_CHUNK):
        t = time.perf_counter()
        records = df.slice(start, PYDANTIC_CHUNK).to_dicts()
        load_s += time.perf_counter() - t

        t = time.perf_counter()
        for i, rec in enumerate(records, start):
            try:
                validate(rec)
            except ValidationError as e:
                for err in e.errors(include_url=False, include_context=False, include_input=False):
                    where = str(err["loc"][0]) if err["loc"] else ""
                    key = PYDANTIC_ERRORS.get((where, err["type"]))
                    if key is None:
                        raise BenchError(f"pydantic: unexpected error at row {i}: {err}") from None
                    bad[key].append(i)
            # uniqueness: a Python dict pass over the ids
            first = first_row.setdefault(rec["event_id"], i)
            if first != i:
                duplicated.add(first)
                duplicated.add(i)
        validate_s += time.perf_counter() - t
        del records

    t = time.perf_counter()
    bad["event_id.unique"] = sorted(duplicated)
    table_ok = ROW_COUNT_MIN <= df.height <= ROW_COUNT_MAX
    counts, rejected = counts_from_index_sets({k: np.asarray(v, dtype=np.int64) for k, v in bad.items()})
    out = work / "quarantine.parquet"
    df[rejected].write_parquet(out, compression="zstd")
    validate_s += time.perf_counter() - t
    return PeerRun(load_s, validate_s, df.height, counts, rejected, pq.read_metadata(out).num_rows, table_ok)


# --------------------------------------------------------------------------- DuckDB


def duckdb_flags() -> list[tuple[str, str]]:
    """(rule key, SQL that is true when a row breaks it); NULL counts as passing."""
    types = ", ".join(sql_str(t) for t in EVENT_TYPES)
    return [
        ("user_id.required", "user_id IS NULL"),
        ("user_id.length", f"coalesce(length(user_id) NOT BETWEEN {USER_ID_MIN} AND {USER_ID_MAX}, false)"),
        ("event_id.regex", f"coalesce(NOT regexp_matches(event_id, {sql_str(EVENT_ID_RE)}), false)"),
        ("event_id.unique", "coalesce(event_id IN (SELECT event_id FROM dup), false)"),
        ("event_type.one_of", f"coalesce(event_type NOT IN ({types}), false)"),
        ("age.between", f"coalesce(age NOT BETWEEN {AGE_MIN} AND {AGE_MAX}, false)"),
        ("email.regex", f"coalesce(NOT regexp_matches(email, {sql_str(EMAIL_RE)}), false)"),
        ("amount.min", f"coalesce(amount < {AMOUNT_MIN}, false)"),
        (CUSTOM_RULE, f"coalesce(NOT ({CUSTOM_CHECK}), false)"),
    ]


def run_duckdb(data: Path, work: Path, exp: Expected) -> PeerRun:
    con = duckdb.connect()  # fresh in-memory database each repetition
    try:
        t0 = time.perf_counter()
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet({sql_str(data)})")
        t1 = time.perf_counter()
        flags = duckdb_flags()
        names = [f"r{i}" for i in range(len(flags))]
        flag_cols = ",\n  ".join(f"{sql} AS {n}" for n, (_, sql) in zip(names, flags))
        # One scan: the rows that break any rule, with a flag per rule (rowid kept for the check).
        con.execute(f"""
            CREATE TEMP TABLE rejected AS
            WITH dup AS (SELECT event_id FROM events GROUP BY event_id HAVING count(*) > 1),
            flagged AS (SELECT rowid AS row_nr, *,\n  {flag_cols}\nFROM events)
            SELECT * FROM flagged WHERE {' OR '.join(names)}
        """)
        # The per-rule counts (every violating row is in `rejected`) and the row count.
        row = con.execute(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {n})" for n in names)
            + f", (SELECT count(*) FROM events) BETWEEN {ROW_COUNT_MIN} AND {ROW_COUNT_MAX}"
            + " FROM rejected"
        ).fetchone()
        out = work / "quarantine.parquet"
        con.execute(
            f"COPY (SELECT {', '.join(COLUMNS)} FROM rejected ORDER BY row_nr) "
            f"TO {sql_str(out)} (FORMAT parquet, COMPRESSION zstd)"
        )
        t2 = time.perf_counter()
        counts = {key: int(v) for (key, _), v in zip(flags, row[:-1])}
        table_ok = bool(row[-1])
        rejected = np.sort(con.execute("SELECT row_nr FROM rejected").fetchnumpy()["row_nr"].astype(np.int64))
        n = con.execute("SELECT count(*) FROM events").fetchone()[0]
        # Per-rule row sets, for the check (not timed).
        for i, (key, _) in enumerate(flags):
            got = np.sort(con.execute(f"SELECT row_nr FROM rejected WHERE r{i}").fetchnumpy()["row_nr"])
            if not np.array_equal(got.astype(np.int64), exp.positions[key][exp.positions[key] < n]):
                raise BenchError(f"duckdb: the rows that break {key} are not the planted ones")
    finally:
        con.close()
    return PeerRun(t1 - t0, t2 - t1, n, counts, rejected, pq.read_metadata(out).num_rows, table_ok)


# --------------------------------------------------------------------------- sluice


# The baseline's contract: the table expectation alone. The rows go through the gate and
# are written as a contract's passed rows are, with no row rule to check.
EXPECT_ONLY_TOML = f"""
[[sources.events.contract.expect]]
row_count = {{ min = {ROW_COUNT_MIN}, max = {ROW_COUNT_MAX} }}
"""

# sluice's runs: the tool name -> the contract its project has.
SLUICE_RUNS = {"sluice": CONTRACT_TOML, "sluice-expect-only": EXPECT_ONLY_TOML, "sluice-no-contract": ""}


def write_sluice_project(data: Path, project: Path, contract: str) -> None:
    project.mkdir(parents=True)
    # A TOML basic string accepts JSON's escapes for any path we might meet.
    toml = f'[project]\nname = "validate_bench"\n\n[sources.events]\npath = {json.dumps(str(data))}\n'
    toml += contract
    (project / "sluice.toml").write_text(toml, encoding="utf-8")


def run_sluice(sluice_bin: Path, project: Path) -> dict:
    proc = subprocess.run(
        [str(sluice_bin), "run", "--project", str(project), "--json"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise BenchError(
            f"sluice exited with {proc.returncode}\n--- stderr ---\n{proc.stderr}\n--- stdout ---\n{proc.stdout}"
        )
    return parse_sluice_json(proc.stdout)


def check_sluice_report(report: dict, exp: Expected, contract: bool) -> dict:
    """The `events` asset read every row and quarantined exactly the bad ones (none without a contract)."""
    assets = report.get("assets")
    if not isinstance(assets, list):
        raise BenchError(f"sluice report has no `assets` array: {json.dumps(report)[:2000]}")
    asset = next((a for a in assets if isinstance(a, dict) and a.get("name") == "events"), None)
    if asset is None:
        raise BenchError(f"sluice report has no asset `events`: {json.dumps(assets)[:2000]}")
    status = str(asset.get("status"))
    if asset.get("error") or "fail" in status or "error" in status:
        raise BenchError(f"sluice asset `events` did not build: {asset}")
    rows_in, rows_out = asset.get("rows_in"), asset.get("rows_out")
    quarantined = asset.get("rows_quarantined") or 0
    want_q = exp.bad_rows if contract else 0
    label = "with" if contract else "without"
    if not isinstance(rows_out, int):
        raise BenchError(f"sluice ({label} the contract): asset `events` has no integer rows_out: {asset}")
    if rows_in is not None and rows_in != exp.rows:
        raise BenchError(f"sluice ({label} the contract): rows_in {rows_in}, the file has {exp.rows} rows")
    if quarantined != want_q:
        raise BenchError(f"sluice ({label} the contract): rows_quarantined {quarantined}, expected {want_q}")
    if rows_out + quarantined != exp.rows:
        raise BenchError(
            f"sluice ({label} the contract): rows_out {rows_out} + rows_quarantined {quarantined} "
            f"!= {exp.rows} rows in the file"
        )
    return asset


# sluice's rule names -> rule family, given the column.
SLUICE_FAMILY = {
    "required": "required", "min_length": "length", "max_length": "length", "regex": "regex",
    "unique": "unique", "one_of": "one_of",
}
SLUICE_RANGE = {"age": "between", "amount": "min"}  # `min` / `max` by column


def sluice_rule_key(column: Optional[str], rule: Optional[str]) -> Optional[str]:
    if rule == CUSTOM_RULE:
        return CUSTOM_RULE
    if rule in SLUICE_FAMILY and column:
        return f"{column}.{SLUICE_FAMILY[rule]}"
    if rule in ("min", "max") and column in SLUICE_RANGE:
        return f"{column}.{SLUICE_RANGE[column]}"
    return None


def check_sluice_quarantine(project: Path, exp: Expected) -> str:
    """Compare the quarantine table's per-rule labels to the planted rows; returns a note."""
    table = find_delta_table(project, "events__quarantine")
    if table is None:
        return "no Delta table events__quarantine found under the project; checked rows_quarantined only"
    q = read_delta_table(table)
    if q is None:  # no live file: the quarantine is empty
        q = pyarrow.table({"rule": pyarrow.array([], pyarrow.string())})
    if q.num_rows != exp.bad_rows:
        raise BenchError(f"sluice: events__quarantine holds {q.num_rows} rows, expected {exp.bad_rows}")
    if "rule" not in q.column_names:
        return f"events__quarantine has no `rule` column ({q.column_names}); checked its row count only"
    rules = q.column("rule").to_pylist()
    cols = q.column("column").to_pylist() if "column" in q.column_names else [None] * len(rules)
    got: Counter = Counter()
    unknown: Counter = Counter()
    for c, r in zip(cols, rules):
        key = sluice_rule_key(c, r)
        if key is None:
            unknown[(c, r)] += 1
        else:
            got[key] += 1
    if unknown:
        return (f"events__quarantine has {q.num_rows} rows (as expected), but labels this bench does not "
                f"map, {dict(unknown)}; per-rule counts not compared")
    # Each planted row breaks exactly one rule, so its label is that rule.
    want = {r: n for r, n in exp.rules.items() if n}
    if dict(got) != want:
        raise BenchError(f"sluice: quarantine rows per rule {dict(got)}, expected {want}")
    return f"events__quarantine: {q.num_rows} rows, per-rule labels as planted"


# --------------------------------------------------------------------------- checks and driver


def check_peer(tool: str, run: PeerRun, exp: Expected) -> None:
    if run.rows_checked != exp.rows:
        raise BenchError(f"{tool}: checked {run.rows_checked} rows, expected {exp.rows}")
    if run.counts != exp.rules:
        diff = {r: (run.counts.get(r), exp.rules[r]) for r in RULES if run.counts.get(r) != exp.rules[r]}
        raise BenchError(f"{tool}: per-rule violations differ from the planted ones (found, planted): {diff}")
    if not np.array_equal(run.rejected, exp.bad_positions()):
        raise BenchError(f"{tool}: rejected {len(run.rejected)} rows, not the {exp.bad_rows} planted ones")
    if run.quarantine_rows != exp.bad_rows:
        raise BenchError(f"{tool}: its quarantine file has {run.quarantine_rows} rows, expected {exp.bad_rows}")
    if not run.table_ok:
        raise BenchError(f"{tool}: the row-count expectation failed")


PEERS = ["great_expectations", "pandera", "pydantic", "duckdb"]


def fmt(x: Optional[float], width: int = 9) -> str:
    return f"{x:>{width}.3f}" if x is not None else f"{'-':>{width}}"


def print_table(results: list[Result], exp: Expected, peers_only: bool) -> None:
    by = {r.tool: r for r in results}
    sl, bare = by.get("sluice"), by.get("sluice-expect-only")
    cost = None
    if sl and bare:
        cost = best(sl.total) - best(bare.total)
    header = (f"{'tool':<20} {'load s':>9} {'validate s':>10} {'total s':>9} {'median s':>9} "
              f"{'total/sluice':>12} {'validate/cost':>13}")
    print()
    print(f"{exp.rows:,} rows, {exp.bad_rows:,} bad (best of each column over the repetitions; "
          "validate includes writing the quarantine)")
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = vratio = "-"
        if sl and not r.tool.startswith("sluice"):
            ratio = f"{best(r.total) / best(sl.total):.2f}"
            if cost and cost > 0 and r.validate:
                vratio = f"{best(r.validate) / cost:.2f}"
        name = r.tool + (" *" if r.scale != 1.0 else "")
        print(f"{name:<20} {fmt(best(r.load))} {fmt(best(r.validate), 10)} {fmt(best(r.total))} "
              f"{fmt(median(r.total))} {ratio:>12} {vratio:>13}")
    print()
    if sl and bare:
        print(f"sluice validation cost = with the contract - with the expectation alone = {best(sl.total):.3f} - "
              f"{best(bare.total):.3f} = {cost:.3f} s (best times; includes writing the quarantine table)")
        print("total/sluice = peer best total / sluice best total (with the contract); "
              "validate/cost = peer best validate / sluice validation cost; above 1 means sluice is faster.")
    elif peers_only:
        print("peers only: sluice was not run, so there are no ratios.")
    for r in results:
        if r.scale != 1.0:
            print(f"* {r.tool}: EXTRAPOLATED: ran on the first {r.sample_rows:,} rows, times scaled "
                  f"linearly by {r.scale:.2f} to {exp.rows:,} rows.")
        if r.note:
            print(f"note: {r.tool}: {r.note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the events Parquet file (with its .expected.json beside it)")
    ap.add_argument("--sluice-bin", type=Path, default=os.environ.get("SLUICE_BIN"),
                    help="the sluice binary (default: $SLUICE_BIN)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per tool (default 3)")
    ap.add_argument("--peers-only", action="store_true", help="run the peers only, not sluice")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated peers to run (default: {','.join(PEERS)})")
    ap.add_argument("--pydantic-rows", type=int, default=None,
                    help="validate only the first N rows with Pydantic and extrapolate its times "
                         "linearly (default: all rows)")
    ap.add_argument("--scratch", type=Path, default=None,
                    help="directory for the per-repetition outputs (default: a new temp dir)")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON here")
    args = ap.parse_args()

    if args.reps < 1:
        ap.error("--reps must be at least 1")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in peers:
        if p not in PEERS:
            ap.error(f"unknown peer {p!r}; choose from {', '.join(PEERS)}")
    if not args.peers_only:
        if args.sluice_bin is None:
            ap.error("give --sluice-bin or set SLUICE_BIN (or pass --peers-only)")
        args.sluice_bin = args.sluice_bin.resolve()
        if not os.access(args.sluice_bin, os.X_OK):
            ap.error(f"sluice binary {args.sluice_bin} is not an executable file")
    data = args.data.resolve()
    if not data.is_file():
        ap.error(f"no such file: {data}")
    exp = Expected.load(data)
    if pq.read_metadata(data).num_rows != exp.rows:
        ap.error(f"{data} does not have the {exp.rows} rows its .expected.json says")
    pyd_rows = args.pydantic_rows
    if pyd_rows is not None and (pyd_rows < 1 or pyd_rows >= exp.rows):
        pyd_rows = None

    versions = {
        "python": platform.python_version(),
        "great_expectations": gx.__version__,
        "pandas": pd.__version__,
        "pandera": pandera.__version__,
        "polars": pl.__version__,
        "pydantic": pydantic.VERSION,
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
    }
    if not args.peers_only:
        versions["sluice"] = sluice_version(args.sluice_bin)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical cores, {platform.platform()}")
    print(f"input: {data} ({exp.rows:,} rows, {exp.bad_rows:,} bad, {data.stat().st_size / 1e6:.1f} MB)")
    print(f"expected violations per rule: {exp.rules}")
    print(f"repetitions: {args.reps} per tool", flush=True)

    tools = [] if args.peers_only else list(SLUICE_RUNS)
    tools += peers
    results = {t: Result(t) for t in tools}
    if "pydantic" in results and pyd_rows is not None:
        results["pydantic"].scale = exp.rows / pyd_rows
        results["pydantic"].sample_rows = pyd_rows
    fns: dict[str, Callable[[Path, Path, Expected], PeerRun]] = {
        "great_expectations": run_great_expectations,
        "pandera": run_pandera,
        "duckdb": run_duckdb,
        "pydantic": lambda d, w, e: run_pydantic(d, w, e, pyd_rows),
    }

    scratch_owner = None
    if args.scratch is None:
        scratch_owner = tempfile.TemporaryDirectory(prefix="sluice-validate-")
        args.scratch = Path(scratch_owner.name)
    args.scratch.mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    try:
        for rep in range(args.reps):
            # Rotate the order each repetition so no tool always runs first.
            order = tools[rep % len(tools):] + tools[: rep % len(tools)]
            for tool in order:
                work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=args.scratch))
                try:
                    res = results[tool]
                    if tool.startswith("sluice"):
                        contract = tool == "sluice"
                        project = work / "project"
                        write_sluice_project(data, project, SLUICE_RUNS[tool])
                        t0 = time.perf_counter()
                        report = run_sluice(args.sluice_bin, project)
                        elapsed = time.perf_counter() - t0
                        asset = check_sluice_report(report, exp, contract)
                        if contract and rep == 0:
                            res.note = check_sluice_quarantine(project, exp)
                        res.add(None, None, elapsed)
                        line = (f"total {elapsed:8.3f} s  (rows_out {asset.get('rows_out')}, "
                                f"quarantined {asset.get('rows_quarantined')})")
                    else:
                        want = exp.prefix(pyd_rows) if tool == "pydantic" and pyd_rows else exp
                        run = fns[tool](data, work, want)
                        check_peer(tool, run, want)
                        res.add(run.load_s, run.validate_s, run.load_s + run.validate_s)
                        line = (f"load {run.load_s:8.3f} s  validate {run.validate_s:8.3f} s  "
                                f"total {run.load_s + run.validate_s:8.3f} s  ({len(run.rejected)} rejected"
                                + (f", sample of {pyd_rows:,} rows" if tool == "pydantic" and pyd_rows else "")
                                + ")")
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                    gc.collect()
                print(f"  rep {rep + 1}/{args.reps}  {tool:<20} {line}", file=sys.stderr, flush=True)
    except BenchError as e:
        print(f"\nbenchmark failed: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch_owner is not None:
            scratch_owner.cleanup()

    ordered = [results[t] for t in tools]
    print_table(ordered, exp, args.peers_only)
    print("every peer found exactly the planted rows for every rule"
          + (" (Pydantic: those of its sample)" if "pydantic" in results and pyd_rows else "")
          + ("" if args.peers_only else "; sluice quarantined exactly as many rows"))

    if args.json_out:
        doc = {
            "versions": versions,
            "cores": os.cpu_count(),
            "reps": args.reps,
            "input": {"path": str(data), "rows": exp.rows, "bad_rows": exp.bad_rows, "rules": exp.rules},
            "results": [
                {
                    "tool": r.tool, "load": r.load, "validate": r.validate, "total": r.total,
                    "best_total": best(r.total), "median_total": median(r.total),
                    "best_load": best(r.load), "best_validate": best(r.validate),
                    "extrapolated_from_rows": r.sample_rows, "note": r.note or None,
                }
                for r in ordered
            ],
        }
        if "sluice" in results and "sluice-expect-only" in results:
            doc["sluice_validation_cost"] = best(results["sluice"].total) - best(results["sluice-expect-only"].total)
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
