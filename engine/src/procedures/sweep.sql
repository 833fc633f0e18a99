-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- A rule that cannot run (rule_problem) is skipped with a warning; the others go on.
-- Never two runs of one rule at once: each rule is worked under its advisory lock
-- (pgsweep.lock_rule); a rule another run holds for longer than pgsweep.lock_wait is skipped
-- with a warning. Paced (pgsweep.pace, docs/scheduling.md "Pacing"): the batch size follows
-- pgsweep.batch_target from p_batch_size on, and between batches the run pauses while a budget
-- is exceeded (standby replay lag, autovacuum on the table, sessions waiting for the sweep, WAL
-- and row rates), each pause said in a NOTICE with its reason, or stops at pgsweep.max_run_time.
-- A standby (a server in recovery) is refused before anything is read.
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
    v_from  text;
    v_problem text;
    v_rule_total bigint;
    v_found boolean := false;
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
    v_pauses integer := 0;
    v_paused_for interval := '0'::pg_catalog.interval;
BEGIN
    deleted := 0;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pgsweep: this server is a standby (in recovery): nothing to sweep here'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run the sweep on the primary; its deletes reach the standby by replication.';
    END IF;
    v_wal_start := pg_catalog.pg_current_wal_lsn();
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_found := true;
        v_problem := pgsweep.rule_problem(v_rule);
        IF v_problem IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            CONTINUE;
        END IF;
        IF v_stop THEN
            RAISE NOTICE 'pgsweep: % (%) left for the next run', v_rule.table_name, v_rule.column_name;
            CONTINUE;
        END IF;
        IF NOT pgsweep.lock_rule(v_rule.table_name, v_rule.column_name,
                                 pgsweep.setting('lock_wait')::pg_catalog.interval) THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: another run is working on it (pid %)',
                v_rule.table_name, v_rule.column_name,
                coalesce(pgsweep.rule_lock_holder(v_rule.table_name, v_rule.column_name)::text, '?');
            CONTINUE;
        END IF;
        v_from := NULL;
        v_rule_total := 0;
        v_size := p_batch_size;
        LOOP
            v_batch_started := pg_catalog.clock_timestamp();
            v_batch_lsn := pg_catalog.pg_current_wal_lsn();
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule, v_from, v_size) AS b;
            -- Before the commit: whoever waits for this batch's row locks waits now.
            v_blocked := pgsweep.sessions_waiting_for_me();
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
            END IF;
        END LOOP;
        PERFORM pgsweep.unlock_rule(v_rule.table_name, v_rule.column_name);
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    IF v_pauses OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'pgsweep: paused % time(s), % in all', v_pauses,
            pg_catalog.date_trunc('millisecond', v_paused_for);
    END IF;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch; CALL outside a transaction block';
