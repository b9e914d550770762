-- Notes people write on a run or a task instance ("re-run after the vendor fixed the feed"),
-- shown on its page and set from the page or the API (Airflow's `note`). Kept apart from
-- `task_instance.note`, which is the scheduler's own reason for an instance's state. Keep in
-- step with the other dialect.
ALTER TABLE dag_run ADD COLUMN user_note TEXT;
ALTER TABLE task_instance ADD COLUMN user_note TEXT;
