"""Rank each season's hitters by OPS: the report's "better than X% of the
league" line. A sluice code step: sluice hands it the pinned version of
`season_lines` as Parquet (path in SLUICE_INPUT_SEASON_LINES) and commits the
Parquet file it writes at SLUICE_OUTPUT as the next version of `ranked`.

pyarrow for the files; the arithmetic is plain Python.
"""

import os
import sys
from bisect import bisect_left
from collections import defaultdict

import pyarrow as pa
import pyarrow.parquet as pq

# A hitter qualifies with 3.1 plate appearances per team game: 162 games a
# season, 60 in 2020.
GAMES = defaultdict(lambda: 162, {2020: 60})


def ratio(num, den):
    return num / den if den else None


def main():
    rows = pq.read_table(os.environ["SLUICE_INPUT_SEASON_LINES"]).to_pylist()
    lines = []
    for r in rows:
        ab, h, bb, hbp, sf = r["ab"] or 0, r["h"] or 0, r["bb"] or 0, r["hbp"] or 0, r["sf"] or 0
        bases = h + (r["doubles"] or 0) + 2 * (r["triples"] or 0) + 3 * (r["hr"] or 0)
        obp = ratio(h + bb + hbp, ab + bb + hbp + sf)
        slg = ratio(bases, ab)
        ops = obp + slg if obp is not None and slg is not None else None
        qualified = (r["pa"] or 0) >= 3.1 * GAMES[r["season"]]
        lines.append((r["player_id"], r["season"], ratio(h, ab), obp, slg, ops, qualified))
    # Per season, the sorted OPS of its qualified hitters.
    league = defaultdict(list)
    for _, season, _, _, _, ops, qualified in lines:
        if qualified and ops is not None:
            league[season].append(ops)
    for v in league.values():
        v.sort()
    out = defaultdict(list)
    for player, season, avg, obp, slg, ops, qualified in lines:
        pct = None
        if qualified and ops is not None:
            peers = league[season]
            pct = round(100.0 * bisect_left(peers, ops) / len(peers), 1)
        for k, v in (("player_id", player), ("season", season), ("avg", avg), ("obp", obp),
                     ("slg", slg), ("ops", ops), ("qualified", qualified), ("ops_percentile", pct)):
            out[k].append(v)
    schema = pa.schema([("player_id", pa.string()), ("season", pa.int64()), ("avg", pa.float64()),
                        ("obp", pa.float64()), ("slg", pa.float64()), ("ops", pa.float64()),
                        ("qualified", pa.bool_()), ("ops_percentile", pa.float64())])
    pq.write_table(pa.table(out, schema=schema), os.environ["SLUICE_OUTPUT"])
    print(f"ranked {len(lines)} player-seasons; {sum(len(v) for v in league.values())} qualified")


if __name__ == "__main__":
    sys.exit(main())
