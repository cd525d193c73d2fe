-- Each flight with when its facts are known: `scheduled_at` (the scheduled
-- departure), `landed_at` (the actual departure plus the time in the air plus 30
-- minutes; a cancelled flight's scheduled departure) and `recorded_at` (when the
-- airline filed it, five minutes later). Times are UTC microseconds.
SELECT concat(carrier, CAST(flight AS VARCHAR), '-', CAST(day AS VARCHAR), '-', origin) AS flight_id,
       carrier, origin, dest, tailnum, dep_delay, arr_delay, air_time, distance,
       arrow_cast(arrow_cast(time_hour, 'Int64') + CAST(minute AS BIGINT) * 60000000,
                  'Timestamp(µs, "UTC")') AS scheduled_at,
       arrow_cast(arrow_cast(time_hour, 'Int64')
                  + CAST(minute + coalesce(dep_delay, 0) + coalesce(air_time, 0) + 30 AS BIGINT) * 60000000,
                  'Timestamp(µs, "UTC")') AS landed_at,
       arrow_cast(arrow_cast(time_hour, 'Int64')
                  + CAST(minute + coalesce(dep_delay, 0) + coalesce(air_time, 0) + 35 AS BIGINT) * 60000000,
                  'Timestamp(µs, "UTC")') AS recorded_at
FROM flights
