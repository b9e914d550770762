-- The notification outbox: one row per notifier of a state change, written in the transaction
-- of that change, so none is lost when a process dies and none is written twice (the key is
-- unique). The scheduler's sender delivers due rows: pending -> sending (a lease) -> sent, or
-- back to pending with a later next_attempt_at, or failed after the last attempt. Keep in step
-- with the other dialect.
CREATE TABLE notification (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    conn_id         TEXT NOT NULL,
    dag_id          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    run_pk          BIGINT NOT NULL,
    task_id         TEXT,
    map_index       BIGINT,
    try_number      BIGINT,
    state           TEXT NOT NULL,
    error           TEXT,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    last_answer     TEXT,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT
);
-- The sender's query: only rows still to deliver are in it.
CREATE INDEX notification_due ON notification (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX notification_run ON notification (run_pk, id);
