-- Every rule of every table (or of p_table), each step its own transaction, so no lock is held
-- longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- The rules come in pgsweep.run_order (an orphan rule after its parent's rules); each is worked
-- by repeating pgsweep.sweep_step, which takes every decision about its rows (the rule re-read
-- per step, its lock, its partitions, its batch, its record, its errors): this procedure only
-- commits, paces and ends the run. A rule that cannot run, is held by another run, gives way
-- or fails is said (WARNING/NOTICE), recorded with its reason, and the run goes on with the
-- next rule; the run then ends 'failed' with the failures named (nothing is raised: every
-- other rule's work is done and committed). Paced (pgsweep.pace, docs/scheduling.md "Pacing"):
-- the batch size follows pgsweep.batch_target from p_batch_size on, and between batches the
-- run pauses while a budget is exceeded, each pause said in a NOTICE with its reason and
-- recorded, or stops at pgsweep.max_run_time: the run ends 'stopped' and the rules it did not
-- finish are recorded as left for the next run. Rows of partitions removed whole do not count
-- against pgsweep.max_rows_per_second. A standby is refused before anything is read.
-- A cancel (statement_timeout, pg_cancel_backend), in a step or in a pause, releases the rule's
-- lock and closes the run ('failed', with the cancel's message), commits that, and is raised
-- again: nothing is left to this session. One elsewhere (just after a COMMIT: no handler may
-- enclose a COMMIT) leaves the run open and its rule locked; the session's next run_begin
-- closes that run ('interrupted') and releases the lock (pgsweep.close_own_leftovers). The
-- run's close is committed before the ANALYZE at its end (pgsweep.analyze_swept).
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 5000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  record;
    v_step  record;
    v_pace  record;
    v_cursor text;
    v_size  integer;
    v_rule_total bigint;
    v_rule_whole bigint;
    v_rule_partitions integer;
    v_row_deleted bigint := 0;
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_wal_start pg_catalog.pg_lsn;
    v_reason text;
    v_slept_from timestamptz;
    v_stopped text;
    v_run_id bigint;
    v_pauses integer := 0;
    v_paused_for interval := '0'::pg_catalog.interval;
    v_pauses_recorded integer := 0;
    v_paused_for_recorded interval := '0'::pg_catalog.interval;
    v_failures text[] := '{}'::text[];
    v_cancel text;
    v_cancel_closed boolean := false;  -- the cancelled step closed its rule itself
    v_began boolean;
    v_status text := 'succeeded';
    v_error text;
    v_analyze regclass[];
    v_analyze_rows numeric[];
BEGIN
    deleted := 0;
    IF p_batch_size IS NULL OR p_batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pgsweep: this server is a standby (in recovery): nothing to sweep here'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run the sweep on the primary; its deletes reach the standby by replication.';
    END IF;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT EXISTS (
            SELECT FROM pgsweep.expiry_rule r WHERE r.table_name OPERATOR(pg_catalog.=) p_table) THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    v_run_id := pgsweep.run_begin('procedure');
    COMMIT;
    v_wal_start := pg_catalog.pg_current_wal_lsn();
    <<rules>>
    FOR v_rule IN SELECT o.table_name, o.column_name FROM pgsweep.run_order(p_table) o LOOP
        IF v_stopped IS NOT NULL THEN
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                p_error => 'left for the next run: ' OPERATOR(pg_catalog.||) v_stopped);
            COMMIT;
            CONTINUE;
        END IF;
        v_cursor := NULL;
        v_size := p_batch_size;
        v_rule_total := 0;
        v_rule_whole := 0;
        v_rule_partitions := 0;
        LOOP
            BEGIN
                SELECT s.* INTO v_step
                  FROM pgsweep.sweep_step(
                           v_run_id, v_rule.table_name, v_rule.column_name, v_cursor, v_size,
                           v_pauses OPERATOR(pg_catalog.-) v_pauses_recorded,
                           v_paused_for OPERATOR(pg_catalog.-) v_paused_for_recorded) s;
            EXCEPTION WHEN query_canceled THEN
                v_cancel := SQLERRM;
            END;
            EXIT rules WHEN v_cancel IS NOT NULL;
            IF v_step.outcome OPERATOR(pg_catalog.=) 'cancelled' THEN
                v_cancel := v_step.message;
                v_cancel_closed := true;
                EXIT rules;
            END IF;
            IF v_step.outcome OPERATOR(pg_catalog.<>) 'skipped' AND v_cursor IS NOT NULL THEN
                v_pauses_recorded := v_pauses;
                v_paused_for_recorded := v_paused_for;
            END IF;
            COMMIT;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_step.deleted
                            OPERATOR(pg_catalog.+) v_step.removed_whole;
            v_rule_whole := v_rule_whole OPERATOR(pg_catalog.+) v_step.removed_whole;
            v_rule_partitions := v_rule_partitions OPERATOR(pg_catalog.+) v_step.partitions_removed;
            v_row_deleted := v_row_deleted OPERATOR(pg_catalog.+) v_step.deleted;
            IF v_step.outcome OPERATOR(pg_catalog.=) 'failed' THEN
                v_failures := v_failures OPERATOR(pg_catalog.||) pg_catalog.format(
                    '%s (%s): %s', v_rule.table_name, v_rule.column_name, v_step.message);
            END IF;
            EXIT WHEN v_step.outcome OPERATOR(pg_catalog.<>) 'more';
            -- Paced between batches only (not after the step that began the rule, which deleted
            -- no row): a rule once begun gets at least one batch per run.
            v_began := v_cursor IS NULL;
            v_cursor := v_step.next_cursor;
            v_size := v_step.next_size;
            CONTINUE WHEN v_began;
            -- Between batches: pace. A cancel while pausing ends the run like one in a step.
            v_reason := NULL;
            BEGIN
                LOOP
                    SELECT p.wait, p.reason, p.stop INTO v_pace
                      FROM pgsweep.pace(v_rule.table_name, v_started, v_row_deleted, v_wal_start,
                                        v_step.blocked, v_step.next_wal) AS p;
                    IF v_pace.stop THEN
                        RAISE NOTICE 'pgsweep: stopping % (%): %; the rest is left for the next run',
                            v_rule.table_name, v_rule.column_name, v_pace.reason;
                        v_stopped := v_pace.reason;
                        EXIT;
                    END IF;
                    EXIT WHEN v_pace.wait OPERATOR(pg_catalog.<=) '0'::pg_catalog.interval;
                    IF v_pace.reason IS DISTINCT FROM v_reason THEN
                        v_pauses := v_pauses OPERATOR(pg_catalog.+) 1;
                        RAISE NOTICE 'pgsweep: pausing % (%): %', v_rule.table_name,
                            v_rule.column_name, v_pace.reason;
                        v_reason := v_pace.reason;
                    END IF;
                    v_slept_from := pg_catalog.clock_timestamp();
                    PERFORM pg_catalog.pg_sleep_for(v_pace.wait);
                    v_paused_for := v_paused_for OPERATOR(pg_catalog.+)
                        (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) v_slept_from);
                    v_step.blocked := 0;
                END LOOP;
                IF v_stopped IS NULL AND p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                    PERFORM pg_catalog.pg_sleep_for(p_pause);
                    v_pauses := v_pauses OPERATOR(pg_catalog.+) 1;
                    v_paused_for := v_paused_for OPERATOR(pg_catalog.+) p_pause;
                END IF;
            EXCEPTION WHEN query_canceled THEN
                v_cancel := SQLERRM;
            END;
            EXIT rules WHEN v_cancel IS NOT NULL;
            -- No snapshot held from one pause to the next batch (vacuum's horizon moves on).
            COMMIT;
            IF v_stopped IS NOT NULL THEN
                PERFORM pgsweep.sweep_step_end(v_run_id, v_rule.table_name, v_rule.column_name,
                    true, 'stopped', 'left for the next run: ' OPERATOR(pg_catalog.||) v_stopped);
                COMMIT;
                EXIT;
            END IF;
        END LOOP;
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name,
            v_rule.column_name;
        IF v_rule_partitions OPERATOR(pg_catalog.>) 0 THEN
            RAISE NOTICE 'pgsweep: of them, % rows in % partitions removed whole', v_rule_whole,
                v_rule_partitions;
        END IF;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    IF v_cancel IS NOT NULL THEN
        -- Whatever the step had not closed itself (a cancel while pausing): the rule's lock,
        -- its record; then the run, committed before the cancel goes on to the caller.
        PERFORM pgsweep.sweep_step_end(v_run_id, v_rule.table_name, v_rule.column_name, true,
            'cancelled', v_cancel)
          WHERE NOT v_cancel_closed;
        PERFORM pgsweep.run_close(v_run_id, 'failed',
            pg_catalog.format('cancelled at %s (%s): %s', v_rule.table_name,
                              v_rule.column_name, v_cancel));
        PERFORM pg_catalog.set_config('pgsweep.open_run', '', false);
        COMMIT;
        RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = v_cancel,
            HINT = 'Every batch before it is committed and recorded; running the sweep again is safe.';
    END IF;
    IF v_pauses OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'pgsweep: paused % time(s), % in all', v_pauses,
            pg_catalog.date_trunc('millisecond', v_paused_for);
    END IF;
    IF pg_catalog.cardinality(v_failures) OPERATOR(pg_catalog.>) 0 THEN
        RAISE WARNING 'pgsweep: % rule(s) failed, the others were swept: %',
            pg_catalog.cardinality(v_failures), pg_catalog.array_to_string(v_failures, '; ');
        v_status := 'failed';
        v_error := pg_catalog.format('%s rule(s) failed: %s',
            pg_catalog.cardinality(v_failures), pg_catalog.array_to_string(v_failures, '; '));
    ELSIF v_stopped IS NOT NULL THEN
        v_status := 'stopped';
        v_error := v_stopped;
    END IF;
    -- The run's close is committed before any ANALYZE: a cancel during one (or just after this
    -- COMMIT) leaves the run closed and no lock behind (pgsweep.run_end does both in one).
    SELECT pg_catalog.array_agg(c.table_name), pg_catalog.array_agg(c.rows_deleted)
      INTO v_analyze, v_analyze_rows
      FROM pgsweep.run_close(v_run_id, v_status, v_error) c;
    PERFORM pg_catalog.set_config('pgsweep.open_run', '', false);
    COMMIT;
    IF v_analyze IS NOT NULL THEN
        PERFORM pgsweep.analyze_swept(v_analyze, v_analyze_rows);
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, paced, one short transaction per step (pgsweep.sweep_step), recorded in pgsweep.run; CALL outside a transaction block';
