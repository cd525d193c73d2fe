#!/usr/bin/env python3
"""The bench's 50-feature view `plane_wide`, computed with pandas from the flights example.

Only for `run.sh --peers-only`, when there is no sluice binary to compute the view: it
follows the recipe of project/plane_wide.toml (and sluice's SQL for a declared view as
of the newest time: one row per plane, windows [t - w, t] with t the newest `landed_at`,
`landed_at` the plane's newest landing) over `flight_events` (sql/flight_events.sql)
after the flights contract's row rules. It is not checked against sluice; with sluice
present, run.sh exports sluice's own table instead, and Feast serves those rows.

Usage: python reference_view.py FLIGHTS_PARQUET OUT_PARQUET
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CARRIERS = {"9E", "AA", "AS", "B6", "DL", "EV", "F9", "FL", "HA", "MQ", "OO", "UA", "US", "VX", "WN", "YV"}
WINDOWS = {"7d": pd.Timedelta(days=7), "30d": pd.Timedelta(days=30), "90d": pd.Timedelta(days=90), "all": None}


def flight_events(flights: Path) -> pd.DataFrame:
    f = pq.read_table(flights).to_pandas()
    # The contract's row rules (a null passes every rule but `required`).
    ok = f["carrier"].isin(CARRIERS)
    ok &= f["tailnum"].isna() | f["tailnum"].str.fullmatch(r"N[0-9A-Z]{1,5}", na=False)
    ok &= f["dep_delay"].isna() | f["dep_delay"].between(-120, 1440)
    ok &= f["arr_delay"].isna() | f["arr_delay"].between(-180, 1440)
    ok &= f["dep_time"].isna() | f["arr_delay"].notna()
    f = f[ok]
    minutes = f["minute"].astype("int64") + f["dep_delay"].fillna(0).astype("int64") \
        + f["air_time"].fillna(0).astype("int64") + 30
    ev = f[["tailnum", "carrier", "origin", "dest", "dep_delay", "arr_delay", "distance"]].copy()
    ev["landed_at"] = f["time_hour"] + pd.to_timedelta(minutes, unit="m")
    ev["landed_at"] = ev["landed_at"].astype("datetime64[us, UTC]")
    return ev[ev["tailnum"].notna() & ev["landed_at"].notna()]


def plane_wide(ev: pd.DataFrame) -> pd.DataFrame:
    t = ev["landed_at"].max()
    g_all = ev.groupby("tailnum", sort=True)
    out = pd.DataFrame(index=g_all.size().index)
    out["landed_at"] = g_all["landed_at"].max()
    cols: dict[str, pd.Series] = {}
    for w, span in WINDOWS.items():
        sub = ev if span is None else ev[ev["landed_at"] >= t - span]
        g = sub.groupby("tailnum")
        cols[f"flights_{w}"] = g.size()
        for c in ("dep_delay", "arr_delay"):
            cols[f"{c}_mean_{w}"] = g[c].mean()
            cols[f"{c}_max_{w}"] = g[c].max()
            cols[f"{c}_sd_{w}"] = g[c].std(ddof=1)
        cols[f"arr_delay_min_{w}"] = g["arr_delay"].min()
        cols[f"miles_{w}"] = g["distance"].sum()
        cols[f"late_{w}"] = sub[sub["arr_delay"] > 15].groupby("tailnum").size()
        cols[f"cancelled_{w}"] = sub[sub["dep_delay"].isna()].groupby("tailnum").size()
        cols[f"dests_{w}"] = g["dest"].nunique()
    cols["origins_all"] = g_all["origin"].nunique()
    last = ev[ev["dest"].notna()].sort_values("landed_at", kind="stable").groupby("tailnum").tail(1)
    cols["last_dest"] = last.set_index("tailnum")["dest"]
    # The order of project/plane_wide.toml.
    order = []
    for line in (Path(__file__).resolve().parent / "project" / "plane_wide.toml").read_text().splitlines():
        if "= { agg" in line:
            order.append(line.split("=", 1)[0].strip())
    for name in order:
        s = cols[name].reindex(out.index)
        if name.startswith(("flights_", "late_", "cancelled_", "dests_", "origins_", "miles_")):
            s = s.fillna(0).astype("int64") if not name.startswith("miles_") else s.astype("Int64")
        elif "_max_" in name or "_min_" in name:
            s = s.astype("Int32")
        out[name] = s
    return out.reset_index()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    df = plane_wide(flight_events(Path(sys.argv[1])))
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, sys.argv[2], compression="zstd")
    print(f"reference_view: {table.num_rows} planes x {table.num_columns - 2} features -> {sys.argv[2]}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
