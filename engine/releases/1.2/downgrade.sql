-- pgsweep engine 1.2 -> 1.1, in two transactions: the first drops what 1.2 added and its
-- release record; the second is 1.1's own install script, which puts 1.1's routines back over
-- 1.2's. Safe to run again: should the second fail (a lock not granted), run this file again and
-- it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.2/downgrade.sql
-- Removing what 1.2 added is what this file is for.
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

-- Run history (1.2): 1.1 has no pgsweep.idle_run and no status 'stopped'. The idle runs are
-- counted into rule_counter first (as run_housekeeping does), so the counters never go down;
-- a stopped run becomes what 1.1 holds, 'succeeded' with an error saying it stopped.
DO $$
BEGIN
    IF to_regclass('pgsweep.idle_run') IS NOT NULL THEN  -- gone when this file runs again
        INSERT INTO pgsweep.rule_counter AS c (table_name, column_name, runs_total, last_success_at)
        SELECT u.table_name, u.column_name, count(*), max(i.ended_at)
          FROM pgsweep.idle_run i
         CROSS JOIN LATERAL unnest(i.table_names, i.column_names) AS u(table_name, column_name)
         GROUP BY u.table_name, u.column_name
        ON CONFLICT (table_name, column_name) DO UPDATE
           SET runs_total = c.runs_total + excluded.runs_total,
               last_success_at = greatest(c.last_success_at, excluded.last_success_at);
        DELETE FROM pgsweep.idle_run;
    END IF;
END $$;
ALTER TABLE pgsweep.run DROP CONSTRAINT IF EXISTS run_status_known;
UPDATE pgsweep.run
   SET status = 'succeeded',
       error = 'stopped before it finished' || coalesce(': ' || error, '')
 WHERE status = 'stopped';
-- 1.1's constraint, as its install creates it (the table is small: the history of 30 days).
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE pgsweep.run ADD CONSTRAINT run_status_known
    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted'));
-- The views that read pgsweep.idle_run, as 1.1 has them (CREATE OR REPLACE keeps their grants),
-- before the table goes.
-- The totals of every rule since the engine was installed, whatever the history's retention:
-- the runs pruned (pgsweep.rule_counter), the runs kept (pgsweep.run_rule) and the insert
-- trigger's sweeps not folded yet. What Prometheus counters read: they only grow. A failure is
-- a rule a run skipped or failed on, or a run that failed or was interrupted.
CREATE OR REPLACE VIEW pgsweep.rule_counters AS
SELECT t.table_name, t.column_name,
       sum(t.rows_deleted)::bigint AS rows_deleted_total,
       sum(t.rows_archived)::bigint AS rows_archived_total,
       sum(t.runs)::bigint AS runs_total,
       sum(t.failures)::bigint AS failures_total,
       max(t.last_success_at) AS last_success_at
  FROM (SELECT c.table_name, c.column_name, c.rows_deleted_total AS rows_deleted,
               c.rows_archived_total AS rows_archived, c.runs_total AS runs,
               c.failures_total AS failures, c.last_success_at
          FROM pgsweep.rule_counter c
        UNION ALL
        SELECT rr.table_name, rr.column_name, rr.rows_deleted, rr.rows_archived,
               CASE WHEN r.status <> 'running' THEN 1 ELSE 0 END,
               CASE WHEN rr.error IS NOT NULL OR r.status IN ('failed', 'interrupted')
                    THEN 1 ELSE 0 END,
               CASE WHEN rr.error IS NULL AND r.status = 'succeeded' THEN rr.ended_at END
          FROM pgsweep.run_rule rr JOIN pgsweep.run r ON r.run_id = rr.run_id
        UNION ALL
        SELECT s.table_name, s.column_name, s.rows_deleted, 0, 0, 0, s.swept_at
          FROM pgsweep.trigger_sweep s) t
 GROUP BY t.table_name, t.column_name;
COMMENT ON VIEW pgsweep.rule_counters IS
    'Per rule totals since install (monotonic): pruned runs, kept history, unfolded trigger sweeps';
-- The last run of every rule that has one (the insert trigger's daily aggregate aside), and how
-- it went for that rule: what pg_cron's job_run_details cannot say (it keeps "CALL").
CREATE OR REPLACE VIEW pgsweep.rule_last_run AS
SELECT DISTINCT ON (rr.table_name, rr.column_name)
       rr.table_name, rr.column_name, rr.run_id, r.invoked_by, r.role_name,
       rr.started_at, rr.ended_at, s.status AS run_status,
       coalesce(rr.error, CASE WHEN s.status <> 'succeeded' THEN r.error END) AS error,
       rr.rows_deleted, rr.rows_archived, rr.batches, rr.pauses, rr.paused_for
  FROM pgsweep.run_rule rr
  JOIN pgsweep.run r ON r.run_id = rr.run_id,
       LATERAL (SELECT CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
                THEN 'interrupted' ELSE r.status END AS status) s
 WHERE r.invoked_by <> 'trigger'
 ORDER BY rr.table_name, rr.column_name, rr.started_at DESC, rr.run_id DESC;
COMMENT ON VIEW pgsweep.rule_last_run IS
    'The last recorded run of each rule (trigger sweeps aside) with its counts and error';
DROP TABLE IF EXISTS pgsweep.idle_run;
DROP FUNCTION IF EXISTS pgsweep.run_close(bigint, text, text);
DROP FUNCTION IF EXISTS pgsweep.run_write_pending(jsonb);

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
