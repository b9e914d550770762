-- The dashboard's aggregates (the KSQL table of the original stack), recomputed from the
-- landed events in one transaction.
INSERT INTO turnstile_totals (station_id, station_name, line, entries, updated_at)
SELECT station_id, MAX(station_name), MAX(line), SUM(entries), now()
FROM turnstile_entries
GROUP BY station_id
ON CONFLICT (station_id) DO UPDATE
  SET station_name = EXCLUDED.station_name, line = EXCLUDED.line,
      entries = EXCLUDED.entries, updated_at = EXCLUDED.updated_at;

INSERT INTO latest_arrivals (line, station_id, train_id, arrived_at)
SELECT DISTINCT ON (line) line, station_id, train_id, arrived_at
FROM arrivals
ORDER BY line, arrived_at DESC, station_id
ON CONFLICT (line) DO UPDATE
  SET station_id = EXCLUDED.station_id, train_id = EXCLUDED.train_id,
      arrived_at = EXCLUDED.arrived_at;
