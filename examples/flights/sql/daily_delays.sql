-- One row per day, carrier and origin airport.
SELECT make_date(year, month, day) AS date,
       carrier,
       origin,
       count(*) AS flights,
       sum(CASE WHEN dep_time IS NULL THEN 1 ELSE 0 END) AS cancelled,
       round(avg(dep_delay), 2) AS mean_dep_delay,
       round(avg(arr_delay), 2) AS mean_arr_delay,
       round(avg(CASE WHEN arr_delay > 15 THEN 1.0 ELSE 0.0 END), 4) AS late_share
FROM flights
GROUP BY year, month, day, carrier, origin
