-- One row per airline: flights, cancellations and delays.
SELECT carrier,
       airline,
       count(*) AS flights,
       sum(CASE WHEN dep_delay IS NULL THEN 1 ELSE 0 END) AS cancelled,
       round(avg(dep_delay), 2) AS mean_dep_delay,
       round(avg(arr_delay), 2) AS mean_arr_delay,
       sum(distance) AS miles
FROM flights_named
GROUP BY carrier, airline
