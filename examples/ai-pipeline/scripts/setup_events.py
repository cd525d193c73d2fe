#!/usr/bin/env python3
"""Load the example's user events into PostgreSQL, or add a day of them.

Usage:
    python3 scripts/setup_events.py            # (re)create ai_events: 200,000 events
    python3 scripts/setup_events.py --more     # add the next day, correct a few recent rows

The database is $PG_URL (default postgres://postgres@127.0.0.1:5432/test); the
rows go in through `psql` and COPY, so nothing but numpy is needed here.

The events are made the way the seed's feature pipeline makes its sample: a
random generator seeded with 42 draws, in this order, each event's user (one
of 1,000, u0000..u0999), its type (click, purchase, view, signup), its amount
(exponential with mean 50, rounded to cents) and its category (electronics,
clothing, food, books); events are evenly spaced in time. Two changes:

- 200,000 events one minute apart rather than a million 30 seconds apart: the
  load takes seconds, and 200,000 minutes (139 days) is long enough that the
  7, 30 and 90-day windows of the features differ;
- the last event falls at 23:59 UTC the day before yesterday (`--end DATE`
  makes it 23:59 the day before DATE), so the features read "as of now" have
  something in their windows and `--more` can add yesterday.

The values are the same on every load (the seed); only the dates follow --end.

Bad rows, on purpose, so the contract's quarantine has something to show.
Their positions are drawn by a second generator (seed 7), so they are the same
rows every time:

- 40 purchases whose amount is negative (a refund written as a purchase);
- 20 events whose type is "Purchase" (a client that capitalised it);
- 10 events with an empty user id (a request from a logged-out page).

That is 70 of the 200,000 rows; sluice quarantines them into
`events__quarantine` and publishes the other 199,930.

--more adds the 1,440 events of the day after the newest one (seeded by that
day, so the same day always gets the same events; two of them have a negative
amount) and corrects the amount of 25 purchases of the last 24 hours already
loaded (a discount applied after the fact: 10% off). Those rows keep their
event time: sluice sees them because its incremental read looks back two days
past its watermark and merges rows by event_id.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import subprocess
import sys

import numpy as np

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"
TABLE = "ai_events"
USERS = np.array([f"u{i:04d}" for i in range(1000)])
TYPES = np.array(["click", "purchase", "view", "signup"])
CATEGORIES = np.array(["electronics", "clothing", "food", "books"])
STEP = dt.timedelta(minutes=1)

DDL = f"""
DROP TABLE IF EXISTS {TABLE};
CREATE TABLE {TABLE} (
    event_id   bigint PRIMARY KEY,
    user_id    text,
    event_type text NOT NULL,
    amount     numeric(12,2),
    category   text NOT NULL,
    created_at timestamptz NOT NULL
);
"""

# sluice's incremental read asks for `created_at > $1`: an index keeps a daily
# load from scanning the whole table.
INDEX = f"CREATE INDEX {TABLE}_created_at ON {TABLE} (created_at);\n"


def psql(url: str, script: str, data: str = "") -> str:
    """Run a script (and COPY data after it) in one psql session, stopping at the first error."""
    done = subprocess.run(
        ["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        input=script + data,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def generate(rng: np.random.RandomState, n: int):
    """The seed's draws, in the seed's order."""
    users = rng.choice(USERS, n)
    types = rng.choice(TYPES, n)
    amounts = rng.exponential(50, n).round(2)
    categories = rng.choice(CATEGORIES, n)
    return users.astype(object), types.astype(object), amounts, categories


def copy_rows(first_id: int, start: dt.datetime, users, types, amounts, categories) -> str:
    """The rows as CSV for COPY: an empty user id is quoted ("" is text, not NULL)."""
    out = io.StringIO()
    for i in range(len(users)):
        user = users[i] if users[i] != "" else '""'
        at = (start + i * STEP).strftime("%Y-%m-%d %H:%M:%S+00")
        out.write(f"{first_id + i},{user},{types[i]},{amounts[i]:.2f},{categories[i]},{at}\n")
    out.write("\\.\n")
    return out.getvalue()


COPY = f"COPY {TABLE} (event_id, user_id, event_type, amount, category, created_at) FROM STDIN WITH (FORMAT csv);\n"


def initial(url: str, rows: int, end: dt.datetime) -> None:
    # RandomState(42) is the generator `np.random.seed(42)` seeds: the same draws.
    users, types, amounts, categories = generate(np.random.RandomState(42), rows)

    bad = np.random.RandomState(7).choice(rows, 70, replace=False)
    # 40 refunds written as purchases: a purchase with a negative amount.
    negative = bad[:40]
    types[negative] = "purchase"
    amounts[negative] = -np.maximum(amounts[negative], 1.0)
    types[bad[40:60]] = "Purchase"           # 20 types the contract does not know
    users[bad[60:70]] = ""                   # 10 events without a user

    start = end - rows * STEP
    psql(url, "BEGIN;\n" + DDL + COPY, copy_rows(1, start, users, types, amounts, categories)
         + INDEX + "COMMIT;\n")
    count, first, last = psql(
        url, f"SELECT count(*), min(created_at), max(created_at) FROM {TABLE};"
    ).split("|")
    print(f"{TABLE}: {count} events from {first} to {last} (70 of them bad on purpose)")


def more(url: str) -> None:
    state = psql(url, f"SELECT max(event_id), extract(epoch FROM max(created_at))::bigint FROM {TABLE};")
    if not state or state.startswith("|"):
        sys.exit(f"{TABLE} is empty: run this script without --more first")
    last_id, last_epoch = (int(x) for x in state.split("|"))
    last = dt.datetime.fromtimestamp(last_epoch, dt.timezone.utc)
    # The rest of the day after the newest event: a whole day after a load that
    # ended at 23:59.
    start = last + STEP
    day = start.date()
    n = int((dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.timezone.utc) - start) / STEP)

    # Seeded by the day, so adding the same day twice (on a fresh load) adds the same events.
    rng = np.random.RandomState(int(day.strftime("%Y%m%d")))
    users, types, amounts, categories = generate(rng, n)
    negative = rng.choice(n, 2, replace=False)
    types[negative] = "purchase"
    amounts[negative] = -np.maximum(amounts[negative], 1.0)

    corrected = f"""
UPDATE {TABLE} SET amount = round(amount * 0.9, 2)
WHERE event_id IN (
    SELECT event_id FROM {TABLE}
    WHERE event_type = 'purchase' AND amount > 0
      AND created_at > to_timestamp({last_epoch}) - interval '24 hours'
    ORDER BY event_id DESC LIMIT 25)
RETURNING event_id;
"""
    out = psql(url, "BEGIN;\n" + corrected + COPY,
               copy_rows(last_id + 1, start, users, types, amounts, categories) + "COMMIT;\n")
    ids = out.split()
    print(f"{TABLE}: added {n} events of {day} (event_id {last_id + 1}..{last_id + n}, "
          f"2 with a negative amount); corrected the amount of {len(ids)} purchases "
          f"of the previous 24 hours (event_id {ids[-1]}..{ids[0]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("PG_URL", DEFAULT_URL),
                    help="PostgreSQL URL (default: $PG_URL or %(default)s)")
    ap.add_argument("--more", action="store_true",
                    help="add the next day of events and correct a few recent ones")
    ap.add_argument("--rows", type=int, default=200_000, help="events of the first load")
    ap.add_argument("--end", help="the first load ends at this UTC date (default: yesterday)")
    args = ap.parse_args()
    if args.more:
        more(args.url)
        return
    if args.end:
        end_day = dt.date.fromisoformat(args.end)
    else:
        end_day = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    initial(args.url, args.rows, dt.datetime.combine(end_day, dt.time(), dt.timezone.utc))


if __name__ == "__main__":
    main()
