-- pgsweep engine 1.2 -> 1.1, in two transactions: the first drops what 1.2 added and its
-- release record; the second is 1.1's own install script, which puts 1.1's routines back over
-- 1.2's. Safe to run again: should the second fail (a lock not granted), run this file again and
-- it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.2/downgrade.sql
-- Removing what 1.2 added is what this file is for.
-- squawk-ignore-file ban-drop-function, ban-drop-column, ban-drop-table, ban-drop-view
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
                WHERE string_to_array(version, '.')::integer[] > '{1,2}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.2 is installed'
            USING HINT = 'Downgrade it to 1.2 first, with its own downgrade.sql.';
    END IF;
END $$;
-- No rule may be registered or changed between the checks below and the drops.
LOCK TABLE pgsweep.expiry_rule IN EXCLUSIVE MODE;

-- The one sweep step (1.2): 1.1's procedure, functions and commands loop on their own.
DROP FUNCTION IF EXISTS pgsweep.sweep_step(bigint, regclass, name, text, integer, integer, interval, boolean);
DROP FUNCTION IF EXISTS pgsweep.sweep_step_end(bigint, regclass, name, boolean, text, text);
DROP FUNCTION IF EXISTS pgsweep.locked_rule(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.run_order(regclass);

-- The rules' registration time (1.2), which rule_status reads: 1.1's install puts the view back.
-- Grants made on pgsweep.rule_status since must be made again.
DROP VIEW IF EXISTS pgsweep.rule_status;
ALTER TABLE pgsweep.expiry_rule DROP COLUMN IF EXISTS registered_at;

DELETE FROM pgsweep.release WHERE version = '1.2';
COMMIT;

\ir ../1.1/install.sql
