-- DAG versions: every distinct source of a DAG, stored once. Keep in step with the other dialect.
--
-- `source_hash` is the SHA-256 of the source text (hex), the same value `dag.source_hash`
-- holds for the DAG's current source; `version_number` counts a DAG's versions from 1 in the
-- order they were first seen. A run is pinned to the version its task instances were created
-- from (`dag_run.dag_version`, a `source_hash`): the scheduler plans it and every worker runs
-- its tries from that source, whatever the file holds later. NULL for runs started before
-- versions were recorded; those follow the current source.
CREATE TABLE dag_version (
    dag_id TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    version_number BIGINT NOT NULL,
    fileloc TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (dag_id, source_hash),
    UNIQUE (dag_id, version_number)
);

ALTER TABLE dag_run ADD COLUMN dag_version TEXT;
