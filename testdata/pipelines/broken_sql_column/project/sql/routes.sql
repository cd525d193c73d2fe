-- Routes and their median delay.
SELECT origin, dest,
       median_of(arr_delay) AS median_arr_delay
FROM flights
GROUP BY origin, dest
