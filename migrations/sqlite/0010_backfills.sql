-- Backfills (Airflow 3's): a date range of a DAG whose missing runs are created (and, by
-- `reprocess`, existing ones run again), with their own `max_active_runs`; paused or cancelled
-- from the UI or the API. Each run a backfill created or ran again carries its id. Keep in
-- step with the other dialect.
CREATE TABLE backfill (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dag_id          TEXT NOT NULL,
    from_date       BIGINT NOT NULL,
    to_date         BIGINT NOT NULL,
    reprocess       TEXT NOT NULL,
    max_active_runs BIGINT NOT NULL,
    conf            TEXT NOT NULL DEFAULT '{}',
    is_paused       BIGINT NOT NULL DEFAULT 0,
    created_by      TEXT,
    created_at      BIGINT NOT NULL,
    -- Set when it is cancelled.
    cancelled_at    BIGINT
);
CREATE INDEX backfill_dag ON backfill (dag_id, id);
ALTER TABLE dag_run ADD COLUMN backfill_id BIGINT;
CREATE INDEX dag_run_backfill ON dag_run (backfill_id, state);
