-- One row per route, with the names of both airports.
SELECT f.origin,
       o.name AS origin_name,
       f.dest,
       d.name AS dest_name,
       count(*) AS flights,
       min(f.distance) AS distance,
       round(avg(f.arr_delay), 2) AS mean_arr_delay
FROM flights f
JOIN airports o ON o.faa = f.origin
LEFT JOIN airports d ON d.faa = f.dest
GROUP BY f.origin, o.name, f.dest, d.name
