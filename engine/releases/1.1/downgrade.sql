-- pgsweep engine 1.1 -> 1.0, in two transactions: the first drops what 1.1 added and its
-- release record; the second is 1.0's own install script, which puts 1.0's routines back over
-- 1.1's (same signatures). Safe to run again: should the second fail (a lock not granted), run
-- this file again and it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.1/downgrade.sql
-- A downgrade exists to remove what its release added.
-- squawk-ignore-file ban-drop-function
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

-- Pacing and the per-rule lock (1.0's CALL pgsweep.sweep() uses neither).
DROP FUNCTION IF EXISTS pgsweep.pace(regclass, timestamptz, bigint, pg_lsn, integer, bigint);
DROP FUNCTION IF EXISTS pgsweep.next_batch_size(integer, interval, integer);
DROP FUNCTION IF EXISTS pgsweep.sessions_waiting_for_me();
DROP FUNCTION IF EXISTS pgsweep.setting(text);
DROP FUNCTION IF EXISTS pgsweep.lock_rule(regclass, name, interval);
DROP FUNCTION IF EXISTS pgsweep.unlock_rule(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.rule_lock_holder(regclass, name);
DROP FUNCTION IF EXISTS pgsweep.rule_lock_keys(regclass, name);

DELETE FROM pgsweep.release WHERE version = '1.1';
COMMIT;

\ir ../1.0/install.sql
