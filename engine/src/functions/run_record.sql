-- Add what one batch (or one whole rule, in a function run) did to a run, in the transaction
-- that did it: the counts are exact whatever happens to the run later. p_since is when that
-- work began (the rule's start on its first record). A rule skipped or failed carries p_error.
-- Only the run's own rows are written: two runs at once never wait on each other here. A record
-- of a pending run (run_begin with p_commits false) that deleted, archived, paused and failed
-- nothing is only added to the pending state; any other writes the run first.
CREATE OR REPLACE FUNCTION pgsweep.run_record(
    p_run_id bigint, p_table regclass, p_column name, p_deleted bigint,
    p_batches bigint DEFAULT 1, p_pauses integer DEFAULT 0, p_paused_for interval DEFAULT '0',
    p_since timestamptz DEFAULT NULL, p_error text DEFAULT NULL, p_archived bigint DEFAULT 0)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := pgsweep.table_key(p_table);
    v_state jsonb := pgsweep.pending_run();
BEGIN
    IF (v_state ->> 'run_id')::bigint = p_run_id AND NOT (v_state ->> 'written')::boolean THEN
        IF p_deleted = 0 AND p_archived = 0 AND p_error IS NULL AND p_pauses = 0
           AND p_paused_for = '0' THEN
            -- One entry per rule, so that run_close writes the idle run without grouping: a
            -- rule recorded again (a caller of its own; sweep_table records each rule once)
            -- adds to its entry.
            IF jsonb_array_length(v_state -> 'rules') > 0
               AND v_state -> 'rules' @> jsonb_build_array(jsonb_build_object(
                                         'table_name', v_table, 'column_name', p_column)) THEN
                v_state := jsonb_set(v_state, '{rules}', (
                    SELECT jsonb_agg(CASE WHEN r.rule ->> 'table_name' = v_table
                                               AND r.rule ->> 'column_name' = p_column
                                          THEN r.rule || jsonb_build_object(
                                                   'ended_at', clock_timestamp(),
                                                   'batches', (r.rule ->> 'batches')::bigint
                                                              + p_batches)
                                          ELSE r.rule END ORDER BY r.n)
                      FROM jsonb_array_elements(v_state -> 'rules') WITH ORDINALITY AS r(rule, n)));
            ELSE
                v_state := jsonb_insert(v_state, '{rules, -1}',
                    jsonb_build_object('table_name', v_table, 'column_name', p_column,
                                       'started_at', coalesce(p_since, clock_timestamp()),
                                       'ended_at', clock_timestamp(), 'batches', p_batches),
                    true);
            END IF;
            PERFORM set_config('pgsweep.pending_run', v_state::text, true);
            RETURN;
        END IF;
        PERFORM pgsweep.run_write_pending(v_state);
    END IF;
    PERFORM pgsweep.require_own_run(p_run_id);
    INSERT INTO pgsweep.run_rule AS rr
           (run_id, table_name, column_name, started_at, ended_at, rows_deleted, rows_archived,
            batches, pauses, paused_for, error)
    VALUES (p_run_id, v_table, p_column, coalesce(p_since, clock_timestamp()), clock_timestamp(),
            p_deleted, p_archived, p_batches, p_pauses, p_paused_for, p_error)
    ON CONFLICT (run_id, table_name, column_name) DO UPDATE
       SET ended_at = excluded.ended_at,
           rows_deleted = rr.rows_deleted + excluded.rows_deleted,
           rows_archived = rr.rows_archived + excluded.rows_archived,
           batches = rr.batches + excluded.batches,
           pauses = rr.pauses + excluded.pauses,
           paused_for = rr.paused_for + excluded.paused_for,
           error = coalesce(excluded.error, rr.error);
    UPDATE pgsweep.run r
       SET rows_deleted = r.rows_deleted + p_deleted,
           rows_archived = r.rows_archived + p_archived,
           batches = r.batches + p_batches,
           pauses = r.pauses + p_pauses,
           paused_for = r.paused_for + p_paused_for
     WHERE r.run_id = p_run_id;
END $$;
COMMENT ON FUNCTION pgsweep.run_record(bigint, regclass, name, bigint, bigint, integer, interval, timestamptz, text, bigint) IS
    'Add one batch''s (or rule''s) counts to a run and its rule';
