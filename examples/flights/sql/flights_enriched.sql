-- Each flight with the weather at its origin at the scheduled departure hour
-- (weather and flights share origin + time_hour), its plane and its airline.
SELECT f.year, f.month, f.day, f.carrier, al.name AS airline, f.flight, f.tailnum,
       f.origin, f.dest, f.time_hour, f.sched_dep_time, f.dep_delay, f.arr_delay,
       f.distance, f.air_time,
       f.arr_delay > 15 AS late,
       w.temp, w.wind_speed, w.wind_gust, w.precip, w.visib, w.pressure,
       p.year AS plane_year, f.year - p.year AS plane_age, p.manufacturer, p.model,
       p.seats, p.engines
FROM flights f
LEFT JOIN weather w ON w.origin = f.origin AND w.time_hour = f.time_hour
LEFT JOIN planes p ON p.tailnum = f.tailnum
LEFT JOIN airlines al ON al.carrier = f.carrier
