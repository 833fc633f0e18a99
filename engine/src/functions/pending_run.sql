-- The pending run of this transaction (run_begin with p_commits false), read from the setting
-- pgsweep.pending_run; NULL when there is none. Any session may set that setting, so the
-- SECURITY DEFINER recorders (run_begin, run_record, run_close) read it only through this
-- check: its run_id must be the last one this session drew from the run sequence, which only
-- the engine's routines can draw from (currval is per session). A forged state (another run_id,
-- or none drawn yet) is an error, never a run written with ids or figures the caller chose.
-- Called with the recorders' rights; a caller of its own needs USAGE on the sequence.
CREATE OR REPLACE FUNCTION pgsweep.pending_run()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state jsonb := nullif(current_setting('pgsweep.pending_run', true), '')::jsonb;
BEGIN
    IF v_state IS NULL THEN
        RETURN NULL;
    END IF;
    IF (v_state ->> 'run_id')::bigint IS DISTINCT FROM currval('pgsweep.run_run_id_seq') THEN
        RAISE EXCEPTION 'pgsweep: the setting pgsweep.pending_run was not made by pgsweep.run_begin'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'RESET pgsweep.pending_run; runs are begun with pgsweep.run_begin().';
    END IF;
    RETURN v_state;
END $$;
COMMENT ON FUNCTION pgsweep.pending_run() IS
    'This transaction''s pending run (pgsweep.pending_run), checked as made by run_begin';
