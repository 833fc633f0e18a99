-- The pacing settings of CALL pgsweep.sweep(), pgsweep run and pgsweep cleanup, and their
-- defaults: one line each, here and nowhere else (docs/scheduling.md, "Pacing"). Each can be set
-- like any custom setting: ALTER DATABASE app SET pgsweep.max_replay_lag = '128MB', ALTER ROLE,
-- SET in a session, or PGOPTIONS='-c pgsweep.pacing=off'. An empty value means the default.
CREATE OR REPLACE FUNCTION pgsweep.setting(p_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_default text := CASE p_name
        WHEN 'pacing'              THEN 'on'    -- off: fixed batches, no pauses (as 1.0)
        WHEN 'batch_target'        THEN '25ms'  -- the time a batch should take
        WHEN 'batch_min'           THEN '100'   -- rows: the smallest batch it shrinks to
        WHEN 'batch_max'           THEN '50000' -- rows: the largest batch it grows to
        WHEN 'max_replay_lag'      THEN '64MB'  -- WAL a connected standby has not replayed
        WHEN 'max_replay_delay'    THEN '1min'  -- a standby's replay_lag
        WHEN 'max_wal_rate'        THEN '0'     -- WAL bytes per second of the run (0: none)
        WHEN 'max_rows_per_second' THEN '0'     -- rows deleted per second of the run (0: none)
        WHEN 'max_run_time'        THEN '0'     -- a run stops after this, the rest next run
        WHEN 'pause_for_autovacuum' THEN 'on'   -- wait while autovacuum works the table
        WHEN 'pause_for_blocked'   THEN 'on'    -- back off when a batch made a session wait
        WHEN 'pause_step'          THEN '1s'    -- the longest single sleep before a re-check
        WHEN 'lock_wait'           THEN '1s'    -- wait for another run of a rule, then skip
    END;
BEGIN
    IF v_default IS NULL THEN
        RAISE EXCEPTION 'unknown pgsweep setting %', p_name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN coalesce(nullif(current_setting('pgsweep.' || p_name, true), ''), v_default);
END $$;
COMMENT ON FUNCTION pgsweep.setting(text) IS
    'A pacing setting (pgsweep.<name>), or its default';
