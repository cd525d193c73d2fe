-- Per carrier: flights, with the airline's name.
SELECT d.carrier, n.name, sum(d.flights) AS flights
FROM daily d
JOIN airline_names n ON n.carrier = d.carrier
GROUP BY d.carrier, n.name
ORDER BY d.carrier
