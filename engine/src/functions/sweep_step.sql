-- One step of a sweep: the unit CALL pgsweep.sweep(), pgsweep.sweep_table(), the cleanup
-- functions, pgsweep cleanup and pgsweep run all repeat, so that every decision about a rule's
-- rows is taken here, once, inside the step's own transaction:
--   * the rule is read as it is now, its row locked until the step commits (locked_rule): a
--     rule changed or removed by another session applies from the next step on (in the
--     caller's transaction, sweep_table, it is read unlocked: see below);
--   * the rule is skipped, with a warning, when it cannot run (rule_problem), is gone, or
--     another run holds it (lock_rule, waiting pgsweep.lock_wait);
--   * p_cursor NULL begins the rule: its advisory lock is taken (released when the rule is done,
--     failed, gave way or was skipped: never left behind by a step), and its partitions
--     entirely past the cutoff go whole (unless p_whole_partitions is off: pgsweep cleanup
--     detaches them concurrently itself); that step deletes no row;
--   * a later step deletes one batch (purge_range) from the cursor it was handed, with its
--     record in the run (run_record) in the same subtransaction;
--   * p_batch_size NULL: the rule's whole garbage in one DELETE, in the caller's transaction,
--     without the advisory lock (sweep_table: one call, one rule). An orphan rule is left to
--     the batched drivers there: its parent's SHARE lock would last until the caller commits;
--   * any error of the rule (a key expression that fails on one value, an archive that no
--     longer fits, a foreign key that refuses) undoes the step's own work, is recorded in the
--     run with its message, said in a WARNING, and returned: the driver goes on with the next
--     rule. A lock not granted in time (the app holds what the batch needs) is giving way, not
--     an error. A cancel (statement_timeout, pg_cancel_backend) is recorded and returned as
--     'cancelled': the driver ends its run and raises it again.
-- outcome: 'more' (call again with next_cursor and next_size), 'done', 'skipped', 'gave_way',
-- 'failed', 'cancelled'. deleted counts rows deleted row by row (what pacing's row rate
-- counts), removed_whole the rows of the partitions_removed partitions removed whole. next_wal is the next batch's
-- expected WAL (this batch's per row), for the replay budget. blocked: sessions that waited
-- for this batch's locks (asked before the commit). message and error_code (its SQLSTATE):
-- why, when not 'more' or 'done'.
CREATE OR REPLACE FUNCTION pgsweep.sweep_step(
    p_run_id bigint, p_table regclass, p_column name, p_cursor text DEFAULT NULL,
    p_batch_size integer DEFAULT 5000, p_pauses integer DEFAULT 0,
    p_paused_for interval DEFAULT '0', p_whole_partitions boolean DEFAULT true,
    OUT outcome text, OUT deleted bigint, OUT removed_whole bigint, OUT partitions_removed integer,
    OUT next_cursor text,
    OUT next_size integer, OUT next_wal bigint, OUT blocked integer, OUT message text,
    OUT error_code text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule    pgsweep.expiry_rule;
    v_started timestamptz := clock_timestamp();
    v_lsn     pg_lsn := pg_current_wal_lsn();
    v_batch   record;
    v_dropped record;
    v_from    text;
    v_begins  boolean := p_cursor IS NULL;
    v_wait    interval;
    v_timeout text;  -- the caller's lock_timeout, when the step shortened it
    v_deferred oid[] := '{}'::oid[];
    v_on_dependent boolean := false;
BEGIN
    deleted := 0;
    removed_whole := 0;
    partitions_removed := 0;
    blocked := 0;
    next_size := p_batch_size;
    next_wal := 0;
    IF p_batch_size IS NOT NULL AND p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pgsweep: this server is a standby (in recovery): nothing to sweep here'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run the sweep on the primary; its deletes reach the standby by replication.';
    END IF;
    IF p_batch_size IS NOT NULL
       AND split_part(current_setting('pgsweep.open_run', true), '@', 1) = p_run_id::text THEN
        -- This statement is the open run's now (pgsweep.open_run_mark).
        PERFORM set_config('pgsweep.open_run', pgsweep.open_run_mark(p_run_id), false);
    END IF;
    IF p_batch_size IS NULL THEN
        -- In the caller's transaction (one DELETE): the rule as it is at the call. Locking it
        -- would hold off every change of it until the caller commits, and cost the no-op call
        -- a transaction id.
        SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
         WHERE r.table_name = p_table AND r.column_name = p_column;
    ELSE
        BEGIN
            v_rule := pgsweep.locked_rule(p_table, p_column);
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, true, 'skipped',
                                           'another session is changing the rule');
            outcome := 'skipped';
            message := 'another session is changing the rule';
            RETURN;
        WHEN insufficient_privilege THEN
            -- locked_rule locks a rule only for a role that may delete from its table: that
            -- rule fails, the run goes on. (In the caller's transaction the rule is read, not
            -- locked, and an error there is the caller's.)
            outcome := 'failed';
            message := SQLERRM;
            error_code := SQLSTATE;
            PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, false, outcome, message);
            RETURN;
        END;
    END IF;
    IF v_rule.table_name IS NULL THEN
        -- Removed since the run began (or since the last step): nothing more to do, nothing to say.
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, p_batch_size IS NOT NULL,
                                       'done', NULL);
        outcome := 'done';
        RETURN;
    END IF;
    message := pgsweep.rule_problem(v_rule);
    IF message IS NULL AND p_batch_size IS NULL AND v_rule.kind = 'orphan' THEN
        message := 'an orphan rule is swept by CALL pgsweep.sweep() or pgsweep cleanup, not in'
                   ' the caller''s transaction (its parent table would stay locked against'
                   ' writers until that transaction ends)';
    END IF;
    IF message IS NULL AND p_batch_size IS NULL AND pgsweep.deferred_keys_possible(v_rule) THEN
        -- Asked once: the keys onto the rule's own table go to its DELETE (purge_rule_leaving).
        SELECT coalesce(bool_or(d.on_dependent), false),
               coalesce(array_agg(d.constraint_oid) FILTER (WHERE NOT d.on_dependent), '{}')
          INTO v_on_dependent, v_deferred
          FROM pgsweep.deferred_references(v_rule) d;
    END IF;
    IF v_on_dependent THEN
        message := 'a deferred foreign key references rows its dependents delete: it is swept by'
                   ' CALL pgsweep.sweep() or pgsweep cleanup, not in the caller''s transaction'
                   ' (the key would be checked at the caller''s COMMIT)';
    END IF;
    IF message IS NULL AND p_batch_size IS NOT NULL
       AND (v_begins OR pgsweep.rule_lock_holder(p_table, p_column) IS DISTINCT FROM pg_backend_pid())
       AND NOT pgsweep.lock_rule(p_table, p_column, pgsweep.setting('lock_wait')::interval) THEN
        message := pgsweep.rule_lock_problem(p_table, p_column);
        outcome := 'skipped';
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, false, outcome, message);
        RETURN;
    END IF;
    IF message IS NOT NULL THEN
        outcome := 'skipped';
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, p_batch_size IS NOT NULL,
                                       outcome, message);
        RETURN;
    END IF;
    -- The rule's work, undone as a whole on any error (one subtransaction per step). Every
    -- statement of it that could wait on a lock the app holds (reading the table or its parent,
    -- not only the DELETE) waits at most pgsweep.lock_wait (or the caller's shorter
    -- lock_timeout): then the rule gives way, 'table locked', and the run goes on.
    -- In the caller's transaction the caller's own lock_timeout is put back after the step
    -- (a SET LOCAL would outlive the call and bound the app's next statements).
    v_wait := greatest(pgsweep.setting('lock_wait')::interval, '1ms');
    v_timeout := current_setting('lock_timeout');
    IF v_timeout = '0' OR v_timeout::interval > v_wait THEN
        PERFORM set_config('lock_timeout', ceil(extract(epoch FROM v_wait) * 1000) || 'ms', true);
    ELSE
        v_timeout := NULL;
    END IF;
    BEGIN
        IF p_batch_size IS NOT NULL THEN
            -- A deferred check (an ORM's DEFERRABLE INITIALLY DEFERRED foreign key, a deferred
            -- constraint trigger) would otherwise fail at the step's COMMIT, outside any
            -- handler: checked here, it fails this rule's step alone. The step is the whole of
            -- its transaction, so no caller's deferred work is checked early.
            SET CONSTRAINTS ALL IMMEDIATE;
        END IF;
        -- Only a partitioned table has partitions to remove: a plain one skips the call (and
        -- the DateStyle and TimeZone its SET clauses cost at every call).
        IF v_begins AND (p_whole_partitions OR p_batch_size IS NULL)
           AND (SELECT c.relkind FROM pg_class c WHERE c.oid = p_table) = 'p' THEN
            SELECT d.partitions, d.rows INTO v_dropped FROM pgsweep.drop_expired_partitions(v_rule) d;
            removed_whole := v_dropped.rows;
            partitions_removed := v_dropped.partitions;
        END IF;
        IF v_begins AND p_batch_size IS NOT NULL THEN
            -- The first step of a batched rule only begins it: the partitions' catalog locks
            -- go with this commit, before any batch.
            IF removed_whole > 0 THEN
                PERFORM pgsweep.run_record(p_run_id, p_table, p_column, removed_whole, 0,
                                           p_since => v_started);
            END IF;
            outcome := 'more';
            next_cursor := '*';
            RETURN;
        END IF;
        IF p_batch_size IS NULL THEN
            -- Never an orphan rule (skipped above): no parent table to hold.
            deleted := pgsweep.purge_rule_leaving(v_rule, v_deferred);
            outcome := 'done';
        ELSIF NOT pgsweep.hold_parents(v_rule) THEN
            outcome := 'gave_way';
            message := format('writers of %s kept it busy', v_rule.parent_table);
        ELSE
            v_from := CASE WHEN p_cursor = '*' THEN NULL ELSE substr(p_cursor, 2) END;
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule, v_from, p_batch_size) b;
            deleted := v_batch.deleted;
            outcome := CASE WHEN v_batch.next_from IS NULL THEN 'done' ELSE 'more' END;
            next_cursor := '>' || v_batch.next_from;
            blocked := pgsweep.sessions_waiting_for_me();
        END IF;
        IF outcome <> 'gave_way' THEN
            PERFORM pgsweep.run_record(
                p_run_id, p_table, p_column, deleted + removed_whole, 1, p_pauses, p_paused_for,
                v_started,
                -- an archiving rule's rows moved to its archive as they were deleted
                p_archived => CASE WHEN v_rule.archive_to IS NOT NULL THEN deleted ELSE 0 END);
        END IF;
    EXCEPTION
        WHEN lock_not_available THEN
            outcome := 'gave_way';
            message := CASE WHEN SQLERRM = 'canceling statement due to lock timeout'
                            THEN 'table locked: a lock the step needed was not granted in time'
                                 ' (pgsweep.lock_wait)'
                            ELSE SQLERRM END;
        WHEN query_canceled THEN
            outcome := 'cancelled';
            message := SQLERRM;
            error_code := SQLSTATE;
        WHEN OTHERS THEN
            outcome := 'failed';
            message := SQLERRM;
            error_code := SQLSTATE;
    END;
    IF v_timeout IS NOT NULL AND p_batch_size IS NULL THEN
        PERFORM set_config('lock_timeout', v_timeout, true);
    END IF;
    IF outcome IN ('gave_way', 'cancelled', 'failed') THEN
        deleted := 0;
        removed_whole := 0;
        partitions_removed := 0;
        next_cursor := NULL;
    END IF;
    IF outcome = 'more' THEN
        next_size := pgsweep.next_batch_size(p_batch_size, clock_timestamp() - v_started, blocked);
        next_wal := (pg_wal_lsn_diff(pg_current_wal_lsn(), v_lsn)::bigint
                     / greatest(deleted, 1)) * next_size;
        RETURN;
    END IF;
    -- A rule done in the caller's transaction has nothing to say, record or release.
    IF outcome <> 'done' OR message IS NOT NULL OR p_batch_size IS NOT NULL THEN
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, p_batch_size IS NOT NULL,
                                       outcome, message);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_step(bigint, regclass, name, text, integer, integer, interval, boolean) IS
    'One step of a sweep of one rule: begin it, or delete its next batch; every driver repeats it';
