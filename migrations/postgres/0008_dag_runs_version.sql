-- A version of each DAG's runs, raised by every insert, delete and change of a run's state,
-- dates or id, in the same transaction: the DAG list reads it with the DAG's row and keeps
-- the recent runs it drew for a DAG until it changes (`web::RecentRuns`). Keep in step with
-- the other dialect.
ALTER TABLE dag ADD COLUMN runs_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION dag_runs_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE dag SET runs_version = runs_version + 1 WHERE dag_id = OLD.dag_id;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        UPDATE dag SET runs_version = runs_version + 1 WHERE dag_id IN (OLD.dag_id, NEW.dag_id);
    ELSE
        UPDATE dag SET runs_version = runs_version + 1 WHERE dag_id = NEW.dag_id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER dag_run_inserted AFTER INSERT ON dag_run
    FOR EACH ROW EXECUTE FUNCTION dag_runs_changed();
CREATE TRIGGER dag_run_deleted AFTER DELETE ON dag_run
    FOR EACH ROW EXECUTE FUNCTION dag_runs_changed();
CREATE TRIGGER dag_run_changed
    AFTER UPDATE OF state, logical_date, start_date, end_date, run_id, dag_id ON dag_run
    FOR EACH ROW EXECUTE FUNCTION dag_runs_changed();
