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
