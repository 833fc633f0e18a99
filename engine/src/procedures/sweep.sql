-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- A rule that cannot run (rule_problem) is skipped with a warning; the others go on.
-- Never two runs of one rule at once: each rule is worked under its advisory lock
-- (pgsweep.lock_rule); a rule another run holds for longer than pgsweep.lock_wait is skipped
-- with a warning. Paced (pgsweep.pace, docs/scheduling.md "Pacing"): the batch size follows
-- pgsweep.batch_target from p_batch_size on, and between batches the run pauses while a budget
-- is exceeded (standby replay lag, autovacuum on the table, sessions waiting for the sweep, WAL
-- and row rates), each pause said in a NOTICE with its reason, or stops at pgsweep.max_run_time.
-- A standby (a server in recovery) is refused before anything is read. A partitioned table's
-- partitions entirely past the cutoff go whole first (pgsweep.drop_expired_partitions,
-- docs/partitions.md); the batches then find the rows of the partition that straddles it.
-- The run is recorded (pgsweep.run, docs/observability.md): its row is committed first, each
-- batch adds its counts (and the pauses before it) in its own transaction, and the run ends
-- 'succeeded', or 'failed' with the error (recorded and committed, then raised again to the
-- caller); a run killed mid-way is later shown 'interrupted'.
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
    v_rule  pgsweep.expiry_rule;
    v_batch record;
    v_pace  record;
    v_dropped record;
    v_from  text;
    v_problem text;
    v_rule_total bigint;
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_wal_start pg_catalog.pg_lsn;
    v_size integer;
    v_next_size integer;
    v_batch_started timestamptz;
    v_batch_lsn pg_catalog.pg_lsn;
    v_batch_wal bigint;
    v_blocked integer;
    v_reason text;
    v_slept_from timestamptz;
    v_stop boolean := false;
    v_run_id bigint;
    v_pauses integer := 0;
    v_paused_for interval := '0'::pg_catalog.interval;
    v_pauses_recorded integer := 0;
    v_paused_for_recorded interval := '0'::pg_catalog.interval;
    v_error text;
    v_state text;
    v_detail text;
    v_hint text;
BEGIN
    deleted := 0;
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
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_problem := pgsweep.rule_problem(v_rule);
        IF v_problem IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                                       p_error => 'skipped: ' OPERATOR(pg_catalog.||) v_problem);
            COMMIT;
            CONTINUE;
        END IF;
        IF v_stop THEN
            RAISE NOTICE 'pgsweep: % (%) left for the next run', v_rule.table_name, v_rule.column_name;
            CONTINUE;
        END IF;
        IF NOT pgsweep.lock_rule(v_rule.table_name, v_rule.column_name,
                                 pgsweep.setting('lock_wait')::pg_catalog.interval) THEN
            v_problem := pg_catalog.format('another run is working on it (pid %s)',
                coalesce(pgsweep.rule_lock_holder(v_rule.table_name, v_rule.column_name)::text, '?'));
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                                       p_error => 'skipped: ' OPERATOR(pg_catalog.||) v_problem);
            COMMIT;
            CONTINUE;
        END IF;
        v_from := NULL;
        -- Whole partitions past the cutoff first (committed at once: the parent's lock goes).
        v_batch_started := pg_catalog.clock_timestamp();
        SELECT d.partitions, d.rows INTO v_dropped FROM pgsweep.drop_expired_partitions(v_rule) AS d;
        IF v_dropped.partitions OPERATOR(pg_catalog.>) 0 THEN
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name,
                                       v_dropped.rows, 0, p_since => v_batch_started);
        END IF;
        COMMIT;
        v_rule_total := v_dropped.rows;
        v_size := p_batch_size;
        LOOP
            v_batch_started := pg_catalog.clock_timestamp();
            v_batch_lsn := pg_catalog.pg_current_wal_lsn();
            -- The batch and its record in one subtransaction: an error undoes the batch and is
            -- recorded (after the block, where COMMIT is allowed) before it is raised again.
            BEGIN
                SELECT b.deleted, b.next_from INTO v_batch
                  FROM pgsweep.purge_range(v_rule, v_from, v_size) AS b;
                PERFORM pgsweep.run_record(
                    v_run_id, v_rule.table_name, v_rule.column_name, v_batch.deleted, 1,
                    v_pauses OPERATOR(pg_catalog.-) v_pauses_recorded,
                    v_paused_for OPERATOR(pg_catalog.-) v_paused_for_recorded, v_batch_started,
                    -- an archiving rule's rows moved to its archive as they were deleted
                    p_archived => CASE WHEN v_rule.archive_to IS NOT NULL
                                       THEN v_batch.deleted ELSE 0 END);
                -- Before the commit: whoever waits for this batch's row locks waits now.
                v_blocked := pgsweep.sessions_waiting_for_me();
            EXCEPTION WHEN OTHERS OR query_canceled THEN  -- a cancel too: record, unlock, raise
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_error = MESSAGE_TEXT,
                                        v_detail = PG_EXCEPTION_DETAIL, v_hint = PG_EXCEPTION_HINT;
            END;
            IF v_error IS NOT NULL THEN
                PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                                           p_error => v_error);
                PERFORM pgsweep.run_end(v_run_id, 'failed',
                    pg_catalog.format('%s (%s): %s', v_rule.table_name, v_rule.column_name, v_error));
                PERFORM pgsweep.unlock_rule(v_rule.table_name, v_rule.column_name);
                COMMIT;
                -- Raised again as it came (an empty DETAIL or HINT would still be printed).
                IF v_detail OPERATOR(pg_catalog.<>) '' AND v_hint OPERATOR(pg_catalog.<>) '' THEN
                    RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error,
                        DETAIL = v_detail, HINT = v_hint;
                ELSIF v_detail OPERATOR(pg_catalog.<>) '' THEN
                    RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error, DETAIL = v_detail;
                ELSIF v_hint OPERATOR(pg_catalog.<>) '' THEN
                    RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error, HINT = v_hint;
                END IF;
                RAISE EXCEPTION USING ERRCODE = v_state, MESSAGE = v_error;
            END IF;
            v_pauses_recorded := v_pauses;
            v_paused_for_recorded := v_paused_for;
            COMMIT;
            v_batch_wal := pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
                                                      v_batch_lsn)::bigint;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.next_from IS NULL;
            v_from := v_batch.next_from;
            v_next_size := pgsweep.next_batch_size(
                v_size, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) v_batch_started,
                v_blocked);
            -- The next batch's WAL, expected from this one's per row (for the replay budget).
            v_batch_wal := v_batch_wal OPERATOR(pg_catalog./)
                GREATEST(v_batch.deleted, 1::bigint)
                OPERATOR(pg_catalog.*) v_next_size;
            v_size := v_next_size;
            v_reason := NULL;
            LOOP
                SELECT p.wait, p.reason, p.stop INTO v_pace
                  FROM pgsweep.pace(v_rule.table_name, v_started,
                                    deleted OPERATOR(pg_catalog.+) v_rule_total, v_wal_start,
                                    v_blocked, v_batch_wal) AS p;
                IF v_pace.stop THEN
                    RAISE NOTICE 'pgsweep: stopping % (%): %; the rest is left for the next run',
                        v_rule.table_name, v_rule.column_name, v_pace.reason;
                    v_stop := true;
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
                -- No snapshot held from one pause step to the next (vacuum's horizon moves on).
                COMMIT;
                v_paused_for := v_paused_for OPERATOR(pg_catalog.+)
                    (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) v_slept_from);
                v_blocked := 0;
            END LOOP;
            EXIT WHEN v_stop;
            IF p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(p_pause);
                v_pauses := v_pauses OPERATOR(pg_catalog.+) 1;
                v_paused_for := v_paused_for OPERATOR(pg_catalog.+) p_pause;
            END IF;
        END LOOP;
        PERFORM pgsweep.unlock_rule(v_rule.table_name, v_rule.column_name);
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        IF v_dropped.partitions OPERATOR(pg_catalog.>) 0 THEN
            RAISE NOTICE 'pgsweep: of them, % rows in % partitions removed whole', v_dropped.rows,
                v_dropped.partitions;
        END IF;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    IF v_pauses OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'pgsweep: paused % time(s), % in all', v_pauses,
            pg_catalog.date_trunc('millisecond', v_paused_for);
    END IF;
    PERFORM pgsweep.run_end(v_run_id, 'succeeded');
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, paced, one short transaction per batch, recorded in pgsweep.run; CALL outside a transaction block';
