-- Cursors of the incremental table sources (sql_to_kafka). Keep in step with the other dialect.
--
-- One row per cursor name (`<dag_id>.<task_id>` unless the task names one): the position
-- after the last row whose message Kafka acknowledged, as JSON (`{"id": 42}` or
-- `{"ts": "...", "id": 42}`). Written only after the acknowledgement, so a crash re-reads
-- rows and never skips one. `updated_at` is in microseconds like every time column.
CREATE TABLE source_cursor (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
