-- Distributed workers (UPDRAFT_EXECUTOR=distributed). Keep in step with the other dialect.
--
-- A queued instance without an owner waits for a worker; a worker claims it by writing itself
-- as `owner_process` with a lease (`lease_expires_at`, microseconds) that its heartbeat renews.
-- A lease that expired is the owner's loss of the try: the sweep takes it back, and every
-- write the owner makes for it afterwards misses (they compare the owner and the try).
ALTER TABLE task_instance ADD COLUMN lease_expires_at BIGINT;

-- What a worker serves, for the scheduler (no queue served by no one is queued silently), the
-- workers page and /metrics: its queues (comma-separated), slots, running tries, and its
-- claims and lease renewals since it started. `lost` is 1 for a process declared dead (its
-- heartbeat stopped), 0 for a clean stop.
ALTER TABLE process ADD COLUMN queues TEXT;
ALTER TABLE process ADD COLUMN slots BIGINT;
ALTER TABLE process ADD COLUMN running BIGINT;
ALTER TABLE process ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
ALTER TABLE process ADD COLUMN lease_renewals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE process ADD COLUMN lost BIGINT NOT NULL DEFAULT 0;

-- The claim reads only queued rows nobody owns, in claim order: a partial index keeps it an
-- index scan however many finished instances the table holds.
CREATE INDEX ti_claimable ON task_instance (queue, priority_weight DESC, queued_at, id)
    WHERE state = 'queued' AND owner_process IS NULL;
-- Leases the sweep looks for.
CREATE INDEX ti_lease ON task_instance (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
