-- The totals of every rule since the engine was installed, whatever the history's retention:
-- the runs pruned (pgsweep.rule_counter), the runs kept (pgsweep.run_rule), the in-transaction
-- runs that deleted nothing (pgsweep.idle_run) and the insert trigger's sweeps not folded yet.
-- What Prometheus counters read: they only grow. A failure is a rule a run skipped or failed
-- on, or a rule of a run that failed (unless the run's failure is another rule's) or was
-- interrupted; a rule a 'stopped' run cut is a run, neither a failure nor a success (its
-- last_success_at does not move), and every rule that run finished before it succeeded.
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
               CASE WHEN rr.error IS NOT NULL OR o.outcome IN ('failed', 'interrupted')
                    THEN 1 ELSE 0 END,
               CASE WHEN rr.error IS NULL AND o.outcome = 'succeeded' THEN rr.ended_at END
          FROM pgsweep.run_rule rr JOIN pgsweep.run r ON r.run_id = rr.run_id
         CROSS JOIN LATERAL (
                SELECT CASE WHEN rr.error IS NULL AND r.status = 'failed'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule f
                                              WHERE f.run_id = rr.run_id AND f.error IS NOT NULL
                                                AND f.error NOT LIKE 'skipped: %')
                            THEN 'succeeded'
                            WHEN rr.error IS NULL AND r.status = 'stopped'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule l
                                              WHERE l.run_id = rr.run_id AND l.error IS NULL
                                                AND (l.started_at, l.table_name, l.column_name)
                                                    > (rr.started_at, rr.table_name, rr.column_name))
                            THEN 'succeeded'
                            ELSE r.status END AS outcome) o
        UNION ALL
        SELECT u.table_name, u.column_name, 0, 0, 1, 0, i.ended_at
          FROM pgsweep.idle_run i
         CROSS JOIN LATERAL unnest(i.table_names, i.column_names) AS u(table_name, column_name)
        UNION ALL
        SELECT s.table_name, s.column_name, s.rows_deleted, 0, 0, 0, s.swept_at
          FROM pgsweep.trigger_sweep s) t
 GROUP BY t.table_name, t.column_name;
COMMENT ON VIEW pgsweep.rule_counters IS
    'Per rule totals since install (monotonic): pruned runs, kept history, idle runs, unfolded trigger sweeps';
