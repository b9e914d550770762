-- Assets (Airflow's data-aware scheduling). An event says an asset was updated: by a task's
-- outlet (with its run), by the API, or by a watcher of a Kafka topic or an S3 prefix, whose
-- dedup key (topic:partition:offset, bucket/key@etag) makes a re-delivered message or a
-- re-listed object record nothing. Keep in step with the other dialect.
CREATE TABLE asset_event (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_uri   TEXT NOT NULL,
    -- task | api | kafka | s3
    source      TEXT NOT NULL,
    dag_id      TEXT,
    run_id      TEXT,
    task_id     TEXT,
    map_index   BIGINT,
    extra       TEXT NOT NULL DEFAULT '{}',
    dedup_key   TEXT,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX asset_event_uri ON asset_event (asset_uri, id);
-- NULL keys are distinct in both dialects: only watchers' events are de-duplicated.
CREATE UNIQUE INDEX asset_event_dedup ON asset_event (asset_uri, dedup_key);
-- How far each asset-scheduled DAG has consumed each of its assets' events: the events after
-- consumed_id are its queue. Created when the DAG is first synced, at the newest event then.
CREATE TABLE asset_cursor (
    dag_id      TEXT NOT NULL,
    asset_uri   TEXT NOT NULL,
    consumed_id BIGINT NOT NULL,
    PRIMARY KEY (dag_id, asset_uri)
);
-- The events an asset-triggered run was created for.
CREATE TABLE dag_run_asset_event (
    run_pk      BIGINT NOT NULL,
    event_id    BIGINT NOT NULL,
    PRIMARY KEY (run_pk, event_id)
);
CREATE INDEX dag_run_asset_event_event ON dag_run_asset_event (event_id);
-- What each DAG's current version names: schedule, outlet or inlet (with its task), and a
-- schedule's watcher (JSON), for the assets page and graph. Rewritten at every sync.
CREATE TABLE dag_asset (
    dag_id      TEXT NOT NULL,
    asset_uri   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    task_id     TEXT NOT NULL DEFAULT '',
    watch       TEXT,
    PRIMARY KEY (dag_id, asset_uri, kind, task_id)
);
CREATE INDEX dag_asset_uri ON dag_asset (asset_uri);
-- When a watcher of a source first started: objects older than that are not new.
CREATE TABLE asset_watch (
    source_key  TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL
);
