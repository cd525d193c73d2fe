-- What the app shows a player: his newest season, where it ranks among the
-- qualified hitters of that season, and his decade in sum.
WITH newest AS (
    SELECT player_id, max(season) AS season FROM season_lines GROUP BY player_id
),
decade AS (
    SELECT
        player_id,
        count(*) AS seasons,
        sum(pa) AS pa,
        sum(h) AS h,
        sum(hr) AS hr,
        CAST(sum(h) AS DOUBLE) / nullif(sum(ab), 0) AS avg
    FROM season_lines
    GROUP BY player_id
)
SELECT
    s.player_id,
    p."nameFirst" || ' ' || p."nameLast" AS name,
    s.season,
    s.teams,
    s.pa,
    s.hr,
    r.avg,
    r.obp,
    r.slg,
    r.ops,
    r.ops_percentile,
    r.qualified,
    d.seasons AS seasons_2011_2020,
    d.hr AS hr_2011_2020,
    d.avg AS avg_2011_2020
FROM season_lines s
JOIN newest n ON n.player_id = s.player_id AND n.season = s.season
JOIN people p ON p."playerID" = s.player_id
JOIN ranked r ON r.player_id = s.player_id AND r.season = s.season
JOIN decade d ON d.player_id = s.player_id
