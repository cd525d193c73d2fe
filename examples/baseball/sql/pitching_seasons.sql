-- One line per pitcher and season, stints summed across teams. Innings are
-- kept as outs (IPouts, 3 to an inning), as Lahman keeps them: 200 1/3 innings
-- is 601 outs, not the 200.1 of a box score; `ip` is outs / 3.
--
-- ERA = 9 * ER / IP, WHIP = (BB + H) / IP, K/9 = 9 * SO / IP: NULL, not a
-- division error, for a season without an out recorded.
WITH seasons AS (
    SELECT
        "playerID" AS player_id,
        "yearID" AS season,
        string_agg("teamID", '/' ORDER BY stint) AS teams,
        sum("W") AS w,
        sum("L") AS l,
        sum("G") AS g,
        sum("GS") AS gs,
        sum("SV") AS sv,
        sum("IPouts") AS ipouts,
        sum("H") AS h,
        sum("ER") AS er,
        sum("BB") AS bb,
        sum("SO") AS so
    FROM pitching
    GROUP BY "playerID", "yearID"
),
innings AS (
    SELECT *, nullif(ipouts, 0) / 3.0 AS ip FROM seasons
)
SELECT
    player_id,
    season,
    make_date(season, 12, 31) AS season_end,
    teams,
    w, l, g, gs, sv, ipouts, ip, h, er, bb, so,
    9.0 * er / ip AS era,
    (bb + h) / ip AS whip,
    9.0 * so / ip AS k_per_9
FROM innings
