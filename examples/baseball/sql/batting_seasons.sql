-- One line per player and season. A player traded mid-season has a row per
-- team ("stint") in Batting; his season is their sum. Lahman's column names are
-- mixed case (and 2B, 3B start with a digit), so they are quoted.
--
-- Rates are NULL, not a division error, when their denominator is 0 (a pitcher
-- who never batted). SO, HBP and SF were not recorded in every era (SF not
-- before 1954): a season's count sums the stints that recorded it and is NULL
-- when none did (218 seasons, mostly of the 1880s, mix recorded and unrecorded
-- stints), and an unrecorded HBP or SF adds 0 to OBP, as the usual reference
-- sites compute it.
WITH seasons AS (
    SELECT
        "playerID" AS player_id,
        "yearID" AS season,
        string_agg("teamID", '/' ORDER BY stint) AS teams,
        sum("G") AS g,
        sum("AB") AS ab,
        sum("H") AS h,
        sum("2B") AS doubles,
        sum("3B") AS triples,
        sum("HR") AS hr,
        sum("BB") AS bb,
        sum("HBP") AS hbp,
        sum("SF") AS sf,
        sum("SO") AS so
    FROM batting
    GROUP BY "playerID", "yearID"
),
counted AS (
    SELECT
        *,
        h + doubles + 2 * triples + 3 * hr AS tb,
        ab + bb + coalesce(hbp, 0) + coalesce(sf, 0) AS obp_pa
    FROM seasons
)
SELECT
    player_id,
    season,
    -- A season's line is known once it is over: the last day of its year
    -- stands for that moment (the time column of the feature views).
    make_date(season, 12, 31) AS season_end,
    teams,
    g, ab, h, doubles, triples, hr, bb, hbp, sf, so, tb,
    CAST(h AS DOUBLE) / nullif(ab, 0) AS avg,
    CAST(h + bb + coalesce(hbp, 0) AS DOUBLE) / nullif(obp_pa, 0) AS obp,
    CAST(tb AS DOUBLE) / nullif(ab, 0) AS slg,
    CAST(h + bb + coalesce(hbp, 0) AS DOUBLE) / nullif(obp_pa, 0)
        + CAST(tb AS DOUBLE) / nullif(ab, 0) AS ops
FROM counted
