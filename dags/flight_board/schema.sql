-- The flight board's mart (MariaDB / MySQL). Run by flight_board.create_tables; idempotent.
CREATE TABLE IF NOT EXISTS flights (
  flight_date         DATE         NOT NULL,
  flight_iata         VARCHAR(16)  NOT NULL,
  direction           VARCHAR(9)   NOT NULL,
  flight_status       VARCHAR(16)  NOT NULL,
  airline_iata        VARCHAR(4),
  airline_name        VARCHAR(80),
  departure_iata      VARCHAR(4),
  departure_airport   VARCHAR(80),
  departure_scheduled VARCHAR(32),
  departure_delay_min INT,
  arrival_iata        VARCHAR(4),
  arrival_airport     VARCHAR(80),
  arrival_scheduled   VARCHAR(32),
  arrival_delay_min   INT,
  PRIMARY KEY (flight_date, flight_iata, direction)
);

CREATE TABLE IF NOT EXISTS top_destinations (
  day          DATE        NOT NULL,
  airport_iata VARCHAR(4)  NOT NULL,
  airport      VARCHAR(80),
  departures   INT         NOT NULL,
  `rank`       INT         NOT NULL,
  PRIMARY KEY (day, airport_iata)
);

CREATE TABLE IF NOT EXISTS top_airlines (
  day          DATE        NOT NULL,
  airline_iata VARCHAR(4)  NOT NULL,
  airline      VARCHAR(80),
  flights      INT         NOT NULL,
  arrivals     INT         NOT NULL,
  departures   INT         NOT NULL,
  avg_delay_min DECIMAL(6, 1),
  `rank`       INT         NOT NULL,
  PRIMARY KEY (day, airline_iata)
);
