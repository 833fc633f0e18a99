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
-- 1.1 does not know the type a rule was registered for: a rule whose column was retyped since
-- (which 1.2 skips) it would read in the new type's way, timestamptz values as UTC wall-clock
-- times and the like. Such a rule is registered again, or removed, first.
-- (Where the column is gone, a run of this file that stopped after its first transaction.)
DO $$
DECLARE
    v_rules text;
BEGIN
    IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                          AND attname = 'registered_type' AND NOT attisdropped) THEN
        EXECUTE $q$SELECT string_agg(format('%s.%I', r.table_name, r.column_name), ', ')
                     FROM pgsweep.expiry_rule r
                     JOIN pg_attribute a ON a.attrelid = r.table_name AND a.attname = r.column_name
                                        AND a.attnum > 0 AND NOT a.attisdropped
                    WHERE r.kind = 'age' AND a.atttypid <> r.registered_type$q$ INTO v_rules;
    END IF;
    IF v_rules IS NOT NULL THEN
        RAISE EXCEPTION 'cannot downgrade to 1.1: the column of rule(s) % changed type since the rule was registered, and 1.1 would read its values in the new type''s way', v_rules
            USING HINT = 'Register each again with pgsweep.add_rule(...) stating its zone or unit, or pgsweep.remove_rule() it, then downgrade.';
    END IF;
END $$;
-- A view that hides expired rows (pgsweep.create_live_view) of a timestamp or date rule calls
-- pgsweep.wall_clock_cutoff, which 1.1 does not have: dropping it would drop the app's view.
DO $$
DECLARE
    v_views text := (SELECT string_agg(DISTINCT v.oid::regclass::text, ', ')
                       FROM pg_depend d
                       JOIN pg_rewrite w ON w.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
                       JOIN pg_class v ON v.oid = w.ev_class
                      WHERE d.refclassid = 'pg_proc'::regclass
                        AND d.refobjid = to_regprocedure('pgsweep.wall_clock_cutoff(timestamptz, text)'));
BEGIN
    IF v_views IS NOT NULL THEN
        RAISE EXCEPTION 'cannot downgrade to 1.1: view(s) % use pgsweep.wall_clock_cutoff, which 1.1 does not have', v_views
            USING HINT = 'Drop them, downgrade, then create them again with pgsweep.create_live_view().';
    END IF;
END $$;
-- 1.2's view has a column more: 1.1's install creates its own again.
DROP VIEW IF EXISTS pgsweep.rules;
DROP FUNCTION IF EXISTS pgsweep.wall_clock_cutoff(timestamptz, text);
ALTER TABLE pgsweep.expiry_rule DROP COLUMN IF EXISTS registered_type;

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
