-- pgsweep engine 1.1 -> 1.0, in two transactions: the first drops what 1.1 added and its
-- release record; the second is 1.0's own install script, which puts 1.0's routines back over
-- 1.1's (same signatures). Safe to run again: should the second fail (a lock not granted), run
-- this file again and it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.1/downgrade.sql
-- Removing what 1.1 added (its rule kinds, its run history, pacing) is what this file is for.
-- squawk-ignore-file ban-drop-view, ban-drop-function, ban-drop-table, ban-drop-column
\set ON_ERROR_STOP on
-- A downgrade exists to remove what 1.1 added.
-- squawk-ignore-file ban-drop-function, ban-drop-column

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;
DO $$
BEGIN
    IF to_regclass('pgsweep.release') IS NULL THEN
        RAISE EXCEPTION 'no standalone pgsweep engine is installed here';
    END IF;
    IF EXISTS (SELECT FROM pgsweep.release
                WHERE string_to_array(version, '.')::integer[] > '{1,1}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.1 is installed'
            USING HINT = 'Downgrade it to 1.1 first, with its own downgrade.sql.';
    END IF;
END $$;
-- No rule may be registered or changed between the checks below and the drops: a rule committed
-- in between would lose what 1.0 cannot read and be run as 1.0 reads it.
LOCK TABLE pgsweep.expiry_rule IN EXCLUSIVE MODE;

-- Rules 1.0 would misread refuse the downgrade: 1.0 ignores conditions, epoch units and rule
-- kinds, so it would delete rows 1.1 keeps (a condition rule or orphan rule read as "column <
-- now()", milliseconds read as seconds), and it has no floor for epoch values, so it would delete
-- values before 2000 that 1.1 never takes for garbage.
DO $$
DECLARE
    v_rule record;
    v_below boolean;
BEGIN
    IF to_regclass('pgsweep.expiry_rule') IS NULL OR NOT EXISTS (
           SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                      AND attname = 'kind' AND NOT attisdropped) THEN
        RETURN;
    END IF;
    FOR v_rule IN
        EXECUTE 'SELECT r.table_name, r.column_name, r.kind, r.condition, r.epoch_unit, r.archive_to'
                '  FROM pgsweep.expiry_rule r'
                ' WHERE r.kind <> ''age'' OR r.condition IS NOT NULL'
                '    OR r.epoch_unit = ''milliseconds'' OR r.archive_to IS NOT NULL'
    LOOP
        RAISE EXCEPTION 'rule %.% is % rule 1.0 cannot run (it would delete rows 1.1 keeps)',
            v_rule.table_name, v_rule.column_name,
            CASE WHEN v_rule.kind <> 'age' THEN 'a ' || v_rule.kind
                 WHEN v_rule.condition IS NOT NULL THEN 'a conditional'
                 WHEN v_rule.archive_to IS NOT NULL THEN 'an archiving'
                 ELSE 'a milliseconds' END
            USING HINT = 'Remove it first (pgsweep.remove_rule), or stay on 1.1.';
    END LOOP;
    FOR v_rule IN
        EXECUTE 'SELECT r.table_name, r.column_name FROM pgsweep.expiry_rule r'
                '  JOIN pg_attribute a ON a.attrelid = r.table_name AND a.attname = r.column_name'
                ' WHERE a.atttypid IN (''smallint''::regtype, ''integer''::regtype, ''bigint''::regtype,'
                '       ''numeric''::regtype, ''double precision''::regtype, ''real''::regtype)'
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE %I < 946684800)',
                       v_rule.table_name, v_rule.column_name) INTO v_below;
        IF v_below THEN
            RAISE EXCEPTION 'rule %.%: rows hold epoch values before 2000, which 1.1 keeps and 1.0 would delete',
                v_rule.table_name, v_rule.column_name
                USING HINT = 'Delete or fix those rows, or remove the rule, or stay on 1.1.';
        END IF;
    END LOOP;
END $$;
-- Run history, status and lag targets (1.1): 1.0 has none of them. THE RUN HISTORY IS LOST
-- on downgrade (pgsweep.run, run_rule, rule_counter, trigger_sweep, and every rule's
-- lag_target); copy those tables first to keep them. 1.0's sweep routines, put back below,
-- record nothing.
DROP VIEW IF EXISTS pgsweep.rule_status;
DROP VIEW IF EXISTS pgsweep.rule_last_run;
DROP VIEW IF EXISTS pgsweep.run_failures;
DROP VIEW IF EXISTS pgsweep.runs;
DROP VIEW IF EXISTS pgsweep.rows_deleted_per_day;
DROP VIEW IF EXISTS pgsweep.rule_counters;
DROP FUNCTION IF EXISTS pgsweep.rule_figures(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.run_begin(text, boolean);
DROP FUNCTION IF EXISTS pgsweep.run_housekeeping();
DROP FUNCTION IF EXISTS pgsweep.run_record(bigint, regclass, name, bigint, bigint, integer, interval, timestamptz, text, bigint);
DROP FUNCTION IF EXISTS pgsweep.run_end(bigint, text, text);
DROP FUNCTION IF EXISTS pgsweep.run_alive(bigint, bigint);
DROP FUNCTION IF EXISTS pgsweep.require_own_run(bigint);
DROP FUNCTION IF EXISTS pgsweep.set_lag_target(regclass, name, interval);
DROP FUNCTION IF EXISTS pgsweep.table_key(regclass);
DROP FUNCTION IF EXISTS pgsweep.history_retention();
DROP FUNCTION IF EXISTS pgsweep.default_lag_target();
DROP FUNCTION IF EXISTS pgsweep.analyze_share();
DROP FUNCTION IF EXISTS pgsweep.exact_count_limit();
DROP TABLE IF EXISTS pgsweep.run_rule;
DROP TABLE IF EXISTS pgsweep.run;
DROP TABLE IF EXISTS pgsweep.rule_counter;
DROP TABLE IF EXISTS pgsweep.trigger_sweep;
ALTER TABLE pgsweep.expiry_rule DROP COLUMN IF EXISTS lag_target;

-- What 1.1 added: its functions, the rule kinds' columns (the rules view names them, and 1.0's
-- install recreates it: grants made on pgsweep.rules since must be made again).
DROP FUNCTION IF EXISTS pgsweep.add_rule(regclass, name, interval, text, text, text);
DROP FUNCTION IF EXISTS pgsweep.set_archive(regclass, name, text);
DROP FUNCTION IF EXISTS pgsweep.create_live_view(regclass, text);
DROP FUNCTION IF EXISTS pgsweep.cutoff_expression(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean);
DROP FUNCTION IF EXISTS pgsweep.archiving_statement(pgsweep.expiry_rule, text);
DROP FUNCTION IF EXISTS pgsweep.purge_statement(regclass, text, boolean, pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.delete_rows(regclass, text, pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.delete_rows_waiting_briefly(regclass, text, pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.add_condition_rule(regclass, name, text);
DROP FUNCTION IF EXISTS pgsweep.add_orphan_rule(regclass, name, regclass, name, text, text);
DROP FUNCTION IF EXISTS pgsweep.checked_condition(regclass, text);
DROP FUNCTION IF EXISTS pgsweep.epoch_scale(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.epoch_unit_problem(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.hold_parents(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.require_leading_index(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.save_rule(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.unindexed_statement(text);
DROP VIEW IF EXISTS pgsweep.rules;
ALTER TABLE IF EXISTS pgsweep.expiry_rule
    DROP COLUMN IF EXISTS archive_to,
    DROP COLUMN IF EXISTS child_key,
    DROP COLUMN IF EXISTS parent_key,
    DROP COLUMN IF EXISTS parent_table,
    DROP COLUMN IF EXISTS condition,
    DROP COLUMN IF EXISTS kind,
    DROP COLUMN IF EXISTS epoch_unit;
-- Pacing and the per-rule lock (1.0's CALL pgsweep.sweep() uses neither).
DROP FUNCTION IF EXISTS pgsweep.pace(regclass, timestamptz, bigint, pg_lsn, integer, bigint);
DROP FUNCTION IF EXISTS pgsweep.next_batch_size(integer, interval, integer);
DROP FUNCTION IF EXISTS pgsweep.sessions_waiting_for_me();
DROP FUNCTION IF EXISTS pgsweep.setting(text);
DROP FUNCTION IF EXISTS pgsweep.lock_rule(regclass, name, interval);
DROP FUNCTION IF EXISTS pgsweep.unlock_rule(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.rule_lock_holder(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.rule_lock_keys(regclass, name);
-- Partition retention (1.1): 1.0 row-deletes a partitioned table (correct, slower), except
-- where a rule keeps its expired partitions in an archive schema: 1.0 would delete those rows.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_attribute
                WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                  AND attname = 'partition_archive_schema' AND NOT attisdropped)
       AND EXISTS (SELECT FROM pgsweep.expiry_rule r
                    WHERE (to_jsonb(r) ->> 'partition_archive_schema') IS NOT NULL) THEN
        RAISE EXCEPTION 'a rule keeps its expired partitions in an archive schema, which 1.0 would delete row by row'
            USING HINT = 'SELECT pgsweep.set_partition_archive(table, column, NULL) for each, or keep 1.1.';
    END IF;
END $$;
DROP FUNCTION IF EXISTS pgsweep.drop_expired_partitions(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.remove_partition(pgsweep.expiry_rule, regclass, bigint);
DROP FUNCTION IF EXISTS pgsweep.expired_partitions(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.set_partition_archive(regclass, name, name);
ALTER TABLE pgsweep.expiry_rule DROP COLUMN IF EXISTS partition_archive_schema;

DELETE FROM pgsweep.release WHERE version = '1.1';
COMMIT;

\ir ../1.0/install.sql
