-- Each player's career: his name, the seasons he played, and his batting and
-- pitching lines summed over them (what the export serves, keyed by player
-- id). A player who never pitched has NULL pitching columns, and the other way
-- round. Career rates are computed from the summed counts, never as a mean of
-- season rates.
WITH hitting AS (
    SELECT
        player_id,
        min(season) AS first_season,
        max(season) AS last_season,
        sum(g) AS g,
        sum(ab) AS ab,
        sum(h) AS h,
        sum(doubles) AS doubles,
        sum(triples) AS triples,
        sum(hr) AS hr,
        sum(bb) AS bb,
        sum(so) AS so,
        sum(tb) AS tb,
        sum(h + bb + coalesce(hbp, 0)) AS on_base,
        sum(ab + bb + coalesce(hbp, 0) + coalesce(sf, 0)) AS obp_pa
    FROM batting_seasons
    GROUP BY player_id
),
throwing AS (
    SELECT
        player_id,
        min(season) AS first_season,
        max(season) AS last_season,
        sum(w) AS w,
        sum(l) AS l,
        sum(sv) AS sv,
        sum(ipouts) AS ipouts,
        sum(h) AS h,
        sum(er) AS er,
        sum(bb) AS bb,
        sum(so) AS so
    FROM pitching_seasons
    GROUP BY player_id
)
SELECT
    p.player_id,
    p.name,
    least(b.first_season, t.first_season) AS first_season,
    greatest(b.last_season, t.last_season) AS last_season,
    b.g AS games,
    b.ab, b.h, b.doubles, b.triples, b.hr, b.bb, b.so,
    CAST(b.h AS DOUBLE) / nullif(b.ab, 0) AS avg,
    CAST(b.on_base AS DOUBLE) / nullif(b.obp_pa, 0) AS obp,
    CAST(b.tb AS DOUBLE) / nullif(b.ab, 0) AS slg,
    CAST(b.on_base AS DOUBLE) / nullif(b.obp_pa, 0)
        + CAST(b.tb AS DOUBLE) / nullif(b.ab, 0) AS ops,
    t.w, t.l, t.sv, t.ipouts,
    t.so AS pitching_so,
    27.0 * t.er / nullif(t.ipouts, 0) AS era,
    3.0 * (t.bb + t.h) / nullif(t.ipouts, 0) AS whip
FROM players p
LEFT JOIN hitting b ON b.player_id = p.player_id
LEFT JOIN throwing t ON t.player_id = p.player_id
WHERE b.player_id IS NOT NULL OR t.player_id IS NOT NULL
-- In id order, so that the exported file is the same from one build to the next.
ORDER BY p.player_id
