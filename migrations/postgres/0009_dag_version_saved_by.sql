-- Who saved a DAG version: the user whose editor save wrote it, NULL when the folder scan
-- found it first (a file written by other means). Keep in step with the other dialect.
ALTER TABLE dag_version ADD COLUMN saved_by TEXT;
