-- The last run of every rule that has one (the insert trigger's daily aggregate aside), and how
-- it went for that rule: what pg_cron's job_run_details cannot say (it keeps "CALL").
-- run_status is the rule's outcome in that run: the run's status (a dead 'running' run shows
-- 'interrupted'), except 'succeeded' for a rule without error in a run that failed on other
-- rules, and for every rule a 'stopped' run finished (the last one it worked, cut by the time
-- budget, is 'stopped'). error is the rule's own, or the run's where the run's failure is the
-- rule's. An in-transaction run that deleted nothing (pgsweep.idle_run, each rule's newest is
-- kept there) counts as a run that succeeded with nothing to do.
CREATE OR REPLACE VIEW pgsweep.rule_last_run AS
SELECT DISTINCT ON (l.table_name, l.column_name) l.*
  FROM (
SELECT rr.table_name, rr.column_name, rr.run_id, r.invoked_by, r.role_name,
       rr.started_at, rr.ended_at, o.outcome AS run_status,
       coalesce(rr.error, CASE WHEN o.outcome IN ('failed', 'interrupted') THEN r.error END)
           AS error,
       rr.rows_deleted, rr.rows_archived, rr.batches, rr.pauses, rr.paused_for
  FROM pgsweep.run_rule rr
  JOIN pgsweep.run r ON r.run_id = rr.run_id,
       LATERAL (SELECT CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
                THEN 'interrupted' ELSE r.status END AS status) s,
       LATERAL (SELECT CASE WHEN rr.error IS NULL AND s.status = 'failed'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule f
                                              WHERE f.run_id = rr.run_id AND f.error IS NOT NULL
                                                AND f.error NOT LIKE 'skipped: %')
                            THEN 'succeeded'
                            WHEN rr.error IS NULL AND s.status = 'stopped'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule l
                                              WHERE l.run_id = rr.run_id AND l.error IS NULL
                                                AND (l.started_at, l.table_name, l.column_name)
                                                    > (rr.started_at, rr.table_name, rr.column_name))
                            THEN 'succeeded'
                            ELSE s.status END AS outcome) o
 WHERE r.invoked_by <> 'trigger'
UNION ALL
SELECT u.table_name, u.column_name, i.run_id, i.invoked_by, i.role_name, i.started_at,
       i.ended_at, 'succeeded', NULL, 0, 0, u.batches, 0, '0'::interval
  FROM pgsweep.idle_run i
 CROSS JOIN LATERAL unnest(i.table_names, i.column_names, i.batches)
           AS u(table_name, column_name, batches)) l
 ORDER BY l.table_name, l.column_name, l.started_at DESC, l.run_id DESC;
COMMENT ON VIEW pgsweep.rule_last_run IS
    'The last recorded run of each rule (trigger sweeps aside) with its outcome for the rule, counts and error';
