-- A version of each DAG's runs, raised by every insert, delete and change of a run's state,
-- dates or id, in the same transaction: the DAG list reads it with the DAG's row and keeps
-- the recent runs it drew for a DAG until it changes (`web::AppState::recent_runs`). A table
-- of its own, so that a run's change never waits on the `dag` rows a folder sync rewrites.
-- Keep in step with the other dialect.
CREATE TABLE dag_runs_version (
    dag_id  TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE TRIGGER dag_run_inserted AFTER INSERT ON dag_run
BEGIN
    INSERT INTO dag_runs_version (dag_id, version) VALUES (NEW.dag_id, 1)
        ON CONFLICT (dag_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER dag_run_deleted AFTER DELETE ON dag_run
BEGIN
    INSERT INTO dag_runs_version (dag_id, version) VALUES (OLD.dag_id, 1)
        ON CONFLICT (dag_id) DO UPDATE SET version = version + 1;
END;

CREATE TRIGGER dag_run_changed
AFTER UPDATE OF state, logical_date, start_date, end_date, run_id, dag_id ON dag_run
BEGIN
    INSERT INTO dag_runs_version (dag_id, version) VALUES (OLD.dag_id, 1)
        ON CONFLICT (dag_id) DO UPDATE SET version = version + 1;
    INSERT INTO dag_runs_version (dag_id, version)
        SELECT NEW.dag_id, 1 WHERE NEW.dag_id <> OLD.dag_id
        ON CONFLICT (dag_id) DO UPDATE SET version = version + 1;
END;
