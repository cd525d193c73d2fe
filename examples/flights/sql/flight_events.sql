-- Each flight stamped with when its facts are known: `scheduled_at` (the
-- scheduled departure, known in advance) and `landed_at` (when its delays are
-- known: the actual departure plus the time in the air, plus 30 minutes of taxi
-- margin; for a cancelled flight, its scheduled departure). Feature views about
-- delays read `landed_at`, so a feature as of a flight's scheduled departure never
-- uses a delay that was not known yet. Times are UTC microseconds. `flight_id`
-- (carrier, flight number, local date, origin: `UA1545-20130101-EWR`) names one
-- flight; `dep_hour` is its scheduled local hour of departure.
SELECT concat(carrier, CAST(flight AS VARCHAR), '-', CAST(year AS VARCHAR),
              lpad(CAST(month AS VARCHAR), 2, '0'), lpad(CAST(day AS VARCHAR), 2, '0'),
              '-', origin) AS flight_id,
       tailnum,
       carrier,
       origin,
       dest,
       dep_delay,
       arr_delay,
       distance,
       hour AS dep_hour,
       arrow_cast(arrow_cast(time_hour, 'Int64') + CAST(minute AS BIGINT) * 60000000,
                  'Timestamp(µs, "UTC")') AS scheduled_at,
       arrow_cast(arrow_cast(time_hour, 'Int64')
                  + CAST(minute + coalesce(dep_delay, 0) + coalesce(air_time, 0) + 30 AS BIGINT) * 60000000,
                  'Timestamp(µs, "UTC")') AS landed_at
FROM flights
