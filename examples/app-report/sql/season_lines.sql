-- One line per player and season: a player traded mid-season has a row per
-- team ("stint"); the report reads his season whole. The feed's column names
-- are mixed case, so they are quoted.
SELECT
    "playerID" AS player_id,
    "yearID" AS season,
    string_agg("teamID", '/' ORDER BY stint) AS teams,
    sum("G") AS games,
    sum("AB") + sum("BB") + coalesce(sum("HBP"), 0) + coalesce(sum("SF"), 0)
        + coalesce(sum("SH"), 0) AS pa,
    sum("AB") AS ab,
    sum("H") AS h,
    sum("2B") AS doubles,
    sum("3B") AS triples,
    sum("HR") AS hr,
    sum("RBI") AS rbi,
    sum("SB") AS sb,
    sum("BB") AS bb,
    coalesce(sum("HBP"), 0) AS hbp,
    coalesce(sum("SF"), 0) AS sf,
    sum("SO") AS so
FROM batting
GROUP BY "playerID", "yearID"
