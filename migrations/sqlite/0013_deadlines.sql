-- Deadline alerts: one row per deadline of a run (the DAG's `deadline:` list, by place),
-- written with the run (or, for `run_start`, given its time when the run starts). The
-- scheduler reads only pending rows whose time has come (the partial index), decides met or
-- missed, and writes a missed one's notifications in the same transaction. Keep in step with
-- the other dialect.
CREATE TABLE deadline (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk      BIGINT NOT NULL,
    dag_id      TEXT NOT NULL,
    ordinal     BIGINT NOT NULL,
    reference   TEXT NOT NULL,
    interval_us BIGINT NOT NULL,
    notify      TEXT NOT NULL,
    deadline_at BIGINT,
    status      TEXT NOT NULL DEFAULT 'pending',
    decided_at  BIGINT,
    UNIQUE (run_pk, ordinal)
);
-- The scheduler's query: only deadlines still to decide are in it.
CREATE INDEX deadline_due ON deadline (deadline_at) WHERE status = 'pending';
-- A DAG's misses, newest first, for its page.
CREATE INDEX deadline_dag ON deadline (dag_id, status, deadline_at);
