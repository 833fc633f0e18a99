-- One row per cleanup run (docs/observability.md): when, who, how it was invoked, how it ended,
-- and what it did in total. CALL pgsweep.sweep() and the command's client-driven batches commit
-- the row at the start ('running') and update it batch by batch, so a run that was killed stays
-- 'running' until pgsweep.run_housekeeping (from the next run_begin) sees that its session is
-- gone and marks it 'interrupted'. A run cut by its time budget (pgsweep.max_run_time) ends
-- 'stopped': neither a failure nor a full success. sweep_table() and the cleanup functions
-- record in the caller's transaction: a run whose transaction rolls back leaves no row, as it
-- deletes nothing; one that deleted nothing writes only a row of pgsweep.idle_run.
-- The insert trigger's sweeps are counted in aggregate: one 'trigger' run per day.
-- Kept for pgsweep.history_retention() (30 days), pruned by run_housekeeping.
CREATE TABLE IF NOT EXISTS pgsweep.run (
    run_id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at       timestamptz,
    invoked_by     text        NOT NULL,
    role_name      name        NOT NULL DEFAULT session_user,
    status         text        NOT NULL DEFAULT 'running',
    error          text,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    rows_archived  bigint      NOT NULL DEFAULT 0,
    batches        bigint      NOT NULL DEFAULT 0,
    rows_given_way bigint,
    pauses         bigint      NOT NULL DEFAULT 0,
    paused_for     interval    NOT NULL DEFAULT '0',
    pid            bigint,
    backend_start  timestamptz,
    CONSTRAINT run_invoked_by_known
        CHECK (invoked_by IN ('procedure', 'function', 'cli', 'scheduler', 'trigger')),
    CONSTRAINT run_status_known
        CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'stopped'))
);
-- 1.1's constraint had no 'stopped' (a run cut by pgsweep.max_run_time); replaced on upgrade
-- with the very expression above, so a fresh and an upgraded engine have one catalog.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint c
                    WHERE c.conrelid = 'pgsweep.run'::regclass AND c.conname = 'run_status_known'
                      AND pg_get_constraintdef(c.oid) LIKE '%stopped%') THEN
        ALTER TABLE pgsweep.run DROP CONSTRAINT IF EXISTS run_status_known;
        ALTER TABLE pgsweep.run ADD CONSTRAINT run_status_known
            CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'stopped'));
    END IF;
END $$;
-- Created with the table, empty: nothing to wait for (and CONCURRENTLY cannot run in the
-- install's transaction).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS run_started_at_idx ON pgsweep.run (started_at);
-- The same: created with the table, empty.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS run_running_idx ON pgsweep.run (run_id) WHERE status = 'running';
COMMENT ON TABLE pgsweep.run IS
    'Cleanup runs (procedure, function, cli, scheduler; trigger sweeps one row a day), kept 30 days';
COMMENT ON COLUMN pgsweep.run.rows_given_way IS
    'Rows left because another transaction held them: NULL, not measured by this release';
COMMENT ON COLUMN pgsweep.run.pid IS
    'The backend that ran it (with backend_start: a ''running'' run whose backend is gone was interrupted)';
