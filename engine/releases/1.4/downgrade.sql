-- pgsweep engine 1.4 -> 1.3, in two transactions: the first drops what 1.4 added and its
-- release record; the second is 1.3's own install script, which puts 1.3's routines back over
-- 1.4's. Safe to run again: should the second fail (a lock not granted), run this file again and
-- it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.4/downgrade.sql
-- Removing what 1.4 added is what this file is for.
-- squawk-ignore-file ban-drop-function, ban-drop-column, ban-drop-table, ban-drop-view, ban-drop-constraint
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
                WHERE string_to_array(version, '.')::integer[] > '{1,4}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.4 is installed'
            USING HINT = 'Downgrade it to 1.4 first, with its own downgrade.sql.';
    END IF;
END $$;
-- No rule may be registered or changed between the checks below and the drops.
LOCK TABLE pgsweep.expiry_rule IN EXCLUSIVE MODE;

-- 1.4's routines that 1.3's install does not replace: 1.3's own bodies never call them.
-- 1.3's sweep closes its run and analyzes in one transaction (run_end).
DROP FUNCTION IF EXISTS pgsweep.analyze_swept(regclass[], numeric[]);
-- 1.3's run_begin leaves what a cancelled run of its session left (the run, the rule lock).
DROP FUNCTION IF EXISTS pgsweep.close_own_leftovers();
-- 1.3 marks no open run (pgsweep.open_run is 1.4's).
DROP FUNCTION IF EXISTS pgsweep.open_run_mark(bigint);
-- 1.3's sweep step says "another run is working on it" whoever holds the lock.
DROP FUNCTION IF EXISTS pgsweep.rule_lock_problem(regclass, name);
-- 1.3's save_rule checks keep_for only by the table's CHECK (keep_for >= '0').
DROP FUNCTION IF EXISTS pgsweep.negative_interval_field(interval);
-- 1.3's create_live_view names every default view <table>_live.
DROP FUNCTION IF EXISTS pgsweep.live_view_name(name);
-- 1.4's no-op path: 1.3's purge_rule and sweep_step ask pgsweep.deferred_references themselves
-- (1.3's install below puts them back), and know neither of these.
DROP FUNCTION IF EXISTS pgsweep.purge_rule_leaving(pgsweep.expiry_rule, oid[]);
DROP FUNCTION IF EXISTS pgsweep.deferred_keys_possible(pgsweep.expiry_rule);
-- 1.3 keeps no record of its concurrent detaches (pgsweep.partition_detach is 1.4's): a
-- detach recorded there is one a cleanup has not finished, which 1.3's next run repairs only if
-- still half-detached; refuse rather than forget one detached and never dropped or attached.
DO $$
BEGIN
    -- Run again after a first run dropped it: nothing to check.
    IF to_regclass('pgsweep.partition_detach') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pgsweep.partition_detach d
                WHERE NOT EXISTS (SELECT FROM pg_inherits i
                                   WHERE i.inhrelid = to_regclass(d.partition))) THEN
        RAISE EXCEPTION 'a partition a cleanup detached is neither dropped nor attached again'
            USING HINT = 'Run pgsweep cleanup (it finishes the detach), then downgrade.';
    END IF;
END $$;
DROP TABLE IF EXISTS pgsweep.partition_detach;

DELETE FROM pgsweep.release WHERE version = '1.4';
COMMIT;

\ir ../1.3/install.sql
