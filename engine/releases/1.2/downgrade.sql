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

-- 1.1 knows no dependents: it would delete a rule's garbage without the rows referencing it (a
-- batch that fails on the foreign key, at COMMIT for a deferred one) and would delete garbage a
-- 'keep' dependent holds.
DO $$
DECLARE
    v_dependent record;
BEGIN
    IF to_regclass('pgsweep.rule_dependent') IS NULL THEN
        RETURN;
    END IF;
    LOCK TABLE pgsweep.rule_dependent IN EXCLUSIVE MODE;
    SELECT d.* INTO v_dependent FROM pgsweep.rule_dependent d
     ORDER BY d.table_name::text, d.column_name, d.referencing_table::text, d.constraint_name LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'rule %.% has a dependent (% of % with action %), which 1.1 cannot run',
            v_dependent.table_name, v_dependent.column_name, v_dependent.constraint_name,
            v_dependent.referencing_table, v_dependent.action
            USING HINT = 'Forget each with SELECT pgsweep.set_dependent(table, column, constraint, NULL) '
                         '(SELECT * FROM pgsweep.dependents lists them), or stay on 1.2.';
    END IF;
END $$;
DROP VIEW IF EXISTS pgsweep.dependents;
DROP FUNCTION IF EXISTS pgsweep.set_dependent(regclass, name, name, text, regclass);
DROP FUNCTION IF EXISTS pgsweep.check_constraints_now(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.referenced_condition(oid);
DROP FUNCTION IF EXISTS pgsweep.rule_dependents(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.quoted_names(name[]);
DROP FUNCTION IF EXISTS pgsweep.execute_delete(text);
DROP TABLE IF EXISTS pgsweep.rule_dependent;

DELETE FROM pgsweep.release WHERE version = '1.2';
COMMIT;

\ir ../1.1/install.sql
