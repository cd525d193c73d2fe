-- How the weather at the origin goes with departure delays.
SELECT CASE
         WHEN visib IS NULL THEN 'unknown'
         WHEN visib < 1 THEN 'under 1 mile'
         WHEN visib < 5 THEN '1 to 5 miles'
         ELSE '5 miles or more'
       END AS visibility,
       precip > 0 AS precipitation,
       count(*) AS flights,
       round(avg(dep_delay), 2) AS mean_dep_delay,
       round(avg(CASE WHEN late THEN 1.0 ELSE 0.0 END), 4) AS late_share
FROM flights_enriched
WHERE dep_delay IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2
