-- pgsweep engine 1.1 -> 1.0, in two transactions: the first drops what 1.1 added and its
-- release record; the second is 1.0's own install script, which puts 1.0's routines back over
-- 1.1's (same signatures). Safe to run again: should the second fail (a lock not granted), run
-- this file again and it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.1/downgrade.sql
-- A downgrade exists to remove what 1.1 added (its history tables and views among them).
-- squawk-ignore-file ban-drop-view, ban-drop-function, ban-drop-table, ban-drop-column
\set ON_ERROR_STOP on

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

DELETE FROM pgsweep.release WHERE version = '1.1';
COMMIT;

\ir ../1.0/install.sql
