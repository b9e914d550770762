-- The day's aggregates of the flight board, recomputed from `flights` (one transaction: the
-- dashboard never sees a day half refreshed). :day and :airport are bound parameters.
DELETE FROM top_destinations WHERE day = :day;

INSERT INTO top_destinations (day, airport_iata, airport, departures, `rank`)
SELECT flight_date, arrival_iata, MAX(arrival_airport), COUNT(*),
       RANK() OVER (ORDER BY COUNT(*) DESC)
FROM flights
WHERE flight_date = :day AND direction = 'departure' AND departure_iata = :airport
GROUP BY flight_date, arrival_iata;

DELETE FROM top_airlines WHERE day = :day;

INSERT INTO top_airlines (day, airline_iata, airline, flights, arrivals, departures, avg_delay_min, `rank`)
SELECT flight_date, airline_iata, MAX(airline_name), COUNT(*),
       SUM(direction = 'arrival'), SUM(direction = 'departure'),
       ROUND(AVG(CASE WHEN direction = 'arrival' THEN arrival_delay_min ELSE departure_delay_min END), 1),
       RANK() OVER (ORDER BY COUNT(*) DESC)
FROM flights
WHERE flight_date = :day
GROUP BY flight_date, airline_iata;
