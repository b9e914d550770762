-- Containment of a try's processes and stop requests. Keep in step with the other dialect.
--
-- What identifies the processes of the current try on its host, written by the worker right
-- after it spawned the command and before the command's output is read: crash recovery kills
-- by these after the worker died. The command runs under setsid, so its process group and
-- session id are both the leader's pid; they mean something only under the same boot.
ALTER TABLE task_instance ADD COLUMN pgid BIGINT;
ALTER TABLE task_instance ADD COLUMN sid BIGINT;
ALTER TABLE task_instance ADD COLUMN cgroup TEXT;       -- the try's cgroup v2 folder, if any
ALTER TABLE task_instance ADD COLUMN boot_id TEXT;      -- /proc/sys/kernel/random/boot_id

-- A user marked or cleared the instance while a try of it ran: the state it asked for
-- ('success', 'failed', or 'none' for a clear), the clear's new max_tries, and who asked. The
-- instance stays running until the try's processes are gone; then the worker (or recovery)
-- records the outcome once and empties these.
ALTER TABLE task_instance ADD COLUMN requested_state TEXT;
ALTER TABLE task_instance ADD COLUMN requested_max_tries BIGINT;
ALTER TABLE task_instance ADD COLUMN requested_note TEXT;
