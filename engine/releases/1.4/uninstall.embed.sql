-- For a migration tool that runs this file inside its own transaction (Flyway, sqlx,
-- golang-migrate, Django RunSQL): GENERATED from the psql file of the same name.
-- pgsweep engine 1.4, uninstall: drops the event trigger and the schema pgsweep with everything
-- in it, and with it every insert trigger an app attached to pgsweep.sweep_on_insert(). App
-- tables and their rows are untouched. Refuses while expiry rules exist (their tables would
-- silently stop being cleaned) unless the session sets pgsweep.force_uninstall = on:
--   PGOPTIONS='-c pgsweep.force_uninstall=on' psql -X -d "$DATABASE_URL" -f engine/releases/1.4/uninstall.sql
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.4/uninstall.sql
-- Safe to run again.
-- Removing the engine is what this file is for.
-- squawk-ignore-file ban-drop-table, ban-drop-schema

-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;

DO $$
DECLARE
    v_rules bigint;
BEGIN
    IF to_regclass('pgsweep.expiry_rule') IS NULL THEN
        RETURN;
    END IF;
    IF to_regclass('pgsweep.release') IS NULL THEN
        RAISE EXCEPTION 'this engine was embedded by Matcha Time''s revisions 0006-0008'
            USING HINT = 'Remove it with the app''s own rollback scripts.';
    END IF;
    SELECT count(*) INTO v_rules FROM pgsweep.expiry_rule;
    IF v_rules > 0 AND current_setting('pgsweep.force_uninstall', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION '% expiry rules are still registered', v_rules
            USING HINT = 'Remove them with pgsweep.remove_rule(), or set pgsweep.force_uninstall = on.';
    END IF;
END $$;

DROP EVENT TRIGGER IF EXISTS pgsweep_forget_dropped_rules;
DROP SCHEMA IF EXISTS pgsweep CASCADE;

