-- Write a run that run_begin kept pending (p_commits false: see run_begin) into pgsweep.run, with
-- the rules recorded so far, once a record makes it more than an idle run. Returns the state
-- with written = true, for the transaction's setting pgsweep.pending_run. Called by the
-- SECURITY DEFINER recorders, with their rights; a caller of its own needs INSERT on the history.
CREATE OR REPLACE FUNCTION pgsweep.run_write_pending(p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_run_id bigint := (p_state ->> 'run_id')::bigint;
    v_state  jsonb := jsonb_set(p_state, '{written}', 'true') - 'rules';
BEGIN
    INSERT INTO pgsweep.run (run_id, started_at, invoked_by, pid, batches) OVERRIDING SYSTEM VALUE
    SELECT v_run_id, (p_state ->> 'started_at')::timestamptz, p_state ->> 'invoked_by',
           pg_backend_pid(),
           coalesce((SELECT sum((r.rule ->> 'batches')::bigint)
                       FROM jsonb_array_elements(p_state -> 'rules') AS r(rule)), 0);
    INSERT INTO pgsweep.run_rule AS rr (run_id, table_name, column_name, started_at, ended_at,
                                        batches)
    SELECT v_run_id, r.table_name, r.column_name, min(r.started_at), max(r.ended_at),
           sum(r.batches)
      FROM jsonb_to_recordset(p_state -> 'rules')
               AS r(table_name text, column_name name, started_at timestamptz,
                    ended_at timestamptz, batches bigint)
     GROUP BY r.table_name, r.column_name;
    PERFORM set_config('pgsweep.pending_run', v_state::text, true);
    RETURN v_state;
END $$;
COMMENT ON FUNCTION pgsweep.run_write_pending(jsonb) IS
    'Write a pending in-transaction run and its rules so far into pgsweep.run';
