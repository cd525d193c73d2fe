-- Per day and carrier: flights and mean delays.
SELECT date_trunc('day', time_hour) AS day, carrier, count(*) AS flights,
       round(avg(dep_delay), 2) AS mean_dep_delay,
       round(avg(arr_delay), 2) AS mean_arr_delay
FROM flights
GROUP BY 1, 2
ORDER BY 1, 2
