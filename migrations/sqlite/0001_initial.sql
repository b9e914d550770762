-- Updraft metadata schema (SQLite). Times are microseconds since the epoch (BIGINT),
-- flags are 0/1. Keep in step with ../postgres/0001_initial.sql.

CREATE TABLE dag (
    dag_id                   TEXT PRIMARY KEY,
    fileloc                  TEXT NOT NULL,
    source                   TEXT NOT NULL,    -- the YAML; other processes re-parse it
    source_hash              TEXT NOT NULL,
    description              TEXT,
    owner                    TEXT NOT NULL,
    tags                     TEXT NOT NULL DEFAULT '[]',
    schedule                 TEXT,             -- NULL: manual triggers only
    is_paused                BIGINT NOT NULL DEFAULT 0,
    is_active                BIGINT NOT NULL DEFAULT 1,
    max_active_runs          BIGINT NOT NULL,
    max_active_tasks         BIGINT NOT NULL,
    next_dagrun              BIGINT,           -- logical date of the next scheduled run
    next_data_interval_start BIGINT,
    next_data_interval_end   BIGINT,           -- the next scheduled run is due then
    last_parsed_at           BIGINT NOT NULL
);

CREATE TABLE dag_run (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    dag_id              TEXT NOT NULL,
    run_id              TEXT NOT NULL,
    run_type            TEXT NOT NULL,
    state               TEXT NOT NULL,
    logical_date        BIGINT NOT NULL,
    data_interval_start BIGINT NOT NULL,
    data_interval_end   BIGINT NOT NULL,
    conf                TEXT NOT NULL DEFAULT '{}',
    triggered_by        TEXT,
    created_at          BIGINT NOT NULL,
    queued_at           BIGINT,
    start_date          BIGINT,
    end_date            BIGINT,
    UNIQUE (dag_id, run_id)
);
CREATE INDEX dag_run_state ON dag_run (state, dag_id);
CREATE INDEX dag_run_dag_date ON dag_run (dag_id, logical_date);

CREATE TABLE task_instance (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_pk          BIGINT NOT NULL REFERENCES dag_run (id) ON DELETE CASCADE,
    dag_id          TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    map_index       BIGINT NOT NULL DEFAULT -1,
    map_item        TEXT,             -- JSON item of a mapped instance
    state           TEXT NOT NULL,
    try_number      BIGINT NOT NULL DEFAULT 0,   -- tries started so far
    max_tries       BIGINT NOT NULL DEFAULT 0,
    operator        TEXT NOT NULL,
    pool            TEXT NOT NULL,
    pool_slots      BIGINT NOT NULL,
    priority_weight BIGINT NOT NULL,
    queue           TEXT NOT NULL,
    next_try_at     BIGINT,           -- up_for_retry / up_for_reschedule: not before
    first_poke_at   BIGINT,           -- sensors: the timeout counts from here
    runnable_at     BIGINT,
    queued_at       BIGINT,
    start_date      BIGINT,
    end_date        BIGINT,
    hostname        TEXT,
    pid             BIGINT,
    owner_process   TEXT,             -- process that queued or runs it (crash recovery)
    rendered        TEXT,             -- JSON of rendered template fields, last try
    note            TEXT,             -- why it is in its state (e.g. the failing upstream)
    updated_at      BIGINT NOT NULL,
    UNIQUE (run_pk, task_id, map_index)
);
CREATE INDEX task_instance_state ON task_instance (state, priority_weight DESC, runnable_at, id);
CREATE INDEX task_instance_run_state ON task_instance (run_pk, state);
CREATE INDEX task_instance_run_task_state ON task_instance (run_pk, task_id, state);
CREATE INDEX task_instance_dag_state ON task_instance (dag_id, state);

CREATE TABLE task_try (
    ti_id         BIGINT NOT NULL REFERENCES task_instance (id) ON DELETE CASCADE,
    try_number    BIGINT NOT NULL,
    state         TEXT NOT NULL,
    runnable_at   BIGINT,
    queued_at     BIGINT,
    start_date    BIGINT,
    end_date      BIGINT,
    hostname      TEXT,
    pid           BIGINT,
    owner_process TEXT,
    log_path      TEXT,
    error         TEXT,
    PRIMARY KEY (ti_id, try_number)
);

CREATE TABLE xcom (
    ti_id     BIGINT NOT NULL REFERENCES task_instance (id) ON DELETE CASCADE,
    run_pk    BIGINT NOT NULL,
    task_id   TEXT NOT NULL,
    map_index BIGINT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (ti_id, key)
);
CREATE INDEX xcom_run ON xcom (run_pk);

CREATE TABLE import_error (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    filename   TEXT NOT NULL,
    line       BIGINT NOT NULL,
    col        BIGINT NOT NULL,
    message    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX import_error_file ON import_error (filename);

CREATE TABLE pool (
    name        TEXT PRIMARY KEY,
    slots       BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
INSERT INTO pool (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

CREATE TABLE variable (
    key          TEXT PRIMARY KEY,
    value        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    is_encrypted BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE connection (
    conn_id       TEXT PRIMARY KEY,
    conn_type     TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    uri_encrypted TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE app_user (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    active        BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    last_login    BIGINT
);

CREATE TABLE user_role (
    user_id BIGINT NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    role    TEXT NOT NULL,   -- viewer | operator | author | admin
    PRIMARY KEY (user_id, role)
);

CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);

CREATE TABLE web_session (
    id         TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    username  TEXT NOT NULL,
    event     TEXT NOT NULL,
    dag_id    TEXT,
    run_id    TEXT,
    task_id   TEXT,
    map_index BIGINT,
    extra     TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Scheduler and worker processes, for crash recovery: a task instance owned by a process
-- whose heartbeat stopped (or whose pid is gone on this host) is failed or retried.
CREATE TABLE process (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT
);
