-- The transit dashboard's tables (PostgreSQL). Run by transit_status.create_tables; idempotent.
CREATE TABLE IF NOT EXISTS station_lines (
  station_id   integer PRIMARY KEY,
  station_name text    NOT NULL,
  line         text    NOT NULL,
  line_order   integer NOT NULL
);

CREATE TABLE IF NOT EXISTS arrivals (
  train_id        text        NOT NULL,
  station_id      integer     NOT NULL,
  line            text        NOT NULL,
  direction       text        NOT NULL,
  train_status    text        NOT NULL,
  prev_station_id integer,
  arrived_at      timestamptz NOT NULL,
  PRIMARY KEY (train_id, station_id)
);

CREATE TABLE IF NOT EXISTS turnstile_entries (
  station_id   integer     NOT NULL,
  station_name text        NOT NULL,
  line         text        NOT NULL,
  entries      integer     NOT NULL,
  counted_at   timestamptz NOT NULL,
  PRIMARY KEY (station_id, counted_at)
);

CREATE TABLE IF NOT EXISTS weather (
  station       text        NOT NULL,
  observed_at   timestamptz NOT NULL,
  temperature_f double precision NOT NULL,
  status        text        NOT NULL,
  wind_mph      double precision,
  PRIMARY KEY (station, observed_at)
);

CREATE TABLE IF NOT EXISTS turnstile_totals (
  station_id   integer     PRIMARY KEY,
  station_name text        NOT NULL,
  line         text        NOT NULL,
  entries      bigint      NOT NULL,
  updated_at   timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS latest_arrivals (
  line       text        PRIMARY KEY,
  station_id integer     NOT NULL,
  train_id   text        NOT NULL,
  arrived_at timestamptz NOT NULL
);
