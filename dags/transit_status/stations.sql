-- The operator's stations table that transit_status reads (PostgreSQL). Not run by the DAG:
-- it is the source system's. `updated_at` is set on insert and on every update.
CREATE TABLE IF NOT EXISTS stations (
  station_id         integer     PRIMARY KEY,
  stop_name          text        NOT NULL,
  station_name       text        NOT NULL,
  direction_id       text        NOT NULL,
  line_order         integer     NOT NULL,
  red                boolean     NOT NULL DEFAULT false,
  blue               boolean     NOT NULL DEFAULT false,
  green              boolean     NOT NULL DEFAULT false,
  avg_hourly_entries integer     NOT NULL DEFAULT 0,
  updated_at         timestamptz NOT NULL DEFAULT now()
);
