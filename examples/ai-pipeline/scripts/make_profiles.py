#!/usr/bin/env python3
"""Write data/profiles.json: the profiles of the 1,000 users the events name.

Usage:
    python3 scripts/make_profiles.py

The file is committed; run this only to make it again (it comes out the same,
byte for byte: the draws are seeded and no date depends on today).
`scripts/profiles_api.py` serves it page by page, as a user service's API would.

Each profile has the fields the seed's event schema checks on a user — an age
and an email — and a few a model can use: country, plan, signup time and when
the profile last changed. Ten profiles are broken on purpose, so the contract
on `profiles` quarantines them:

- u0013, u0257, u0598: ages outside 0..150 (-5, 151, 240);
- u0101, u0444, u0777, u0902: emails that are not addresses;
- u0350, u0666: no email at all (null);
- u0820: an age of -1 together with a bad email (quarantined once, under the
  first rule it breaks).

Standard library plus numpy.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np

COUNTRIES = ["JP", "US", "DE", "FR", "BR", "IN"]
PLANS = ["free", "plus", "pro"]


def main() -> None:
    rng = np.random.RandomState(42)
    n = 1000
    ages = rng.randint(16, 80, n)
    countries = rng.choice(COUNTRIES, n, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.1])
    plans = rng.choice(PLANS, n, p=[0.6, 0.3, 0.1])
    base = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    signup_minutes = rng.randint(0, 365 * 24 * 60, n)
    changed_minutes = rng.randint(0, 180 * 24 * 60, n)

    profiles = []
    for i in range(n):
        user = f"u{i:04d}"
        signup = base + dt.timedelta(minutes=int(signup_minutes[i]))
        changed = signup + dt.timedelta(minutes=int(changed_minutes[i]))
        profiles.append({
            "user_id": user,
            "email": f"{user}@example.com",
            "age": int(ages[i]),
            "country": str(countries[i]),
            "plan": str(plans[i]),
            "signup_at": signup.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "updated_at": changed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })

    broken = {
        "u0013": {"age": -5},
        "u0257": {"age": 151},
        "u0598": {"age": 240},
        "u0101": {"email": "not-an-email"},
        "u0444": {"email": "u0444@"},
        "u0777": {"email": "@example.com"},
        "u0902": {"email": "u0902 at example.com"},
        "u0350": {"email": None},
        "u0666": {"email": None},
        "u0820": {"age": -1, "email": "u0820@example"},
    }
    for p in profiles:
        p.update(broken.get(p["user_id"], {}))

    out = Path(__file__).resolve().parent.parent / "data" / "profiles.json"
    out.write_text(json.dumps(profiles, separators=(",", ":")).replace("},{", "},\n{") + "\n")
    print(f"wrote {out} ({len(profiles)} profiles, {len(broken)} broken on purpose)")


if __name__ == "__main__":
    main()
