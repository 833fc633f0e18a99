-- The never-pruned totals of every rule, the insert trigger's sweeps not folded yet included:
-- what Prometheus counters read (they only grow, whatever the history's retention).
CREATE OR REPLACE VIEW pgsweep.rule_counters AS
SELECT coalesce(c.table_name, t.table_name) AS table_name,
       coalesce(c.column_name, t.column_name) AS column_name,
       coalesce(c.rows_deleted_total, 0) + coalesce(t.rows_deleted, 0) AS rows_deleted_total,
       coalesce(c.rows_archived_total, 0) AS rows_archived_total,
       coalesce(c.runs_total, 0) AS runs_total,
       coalesce(c.failures_total, 0) AS failures_total,
       greatest(c.last_success_at, t.last_at) AS last_success_at
  FROM pgsweep.rule_counter c
  FULL JOIN (SELECT s.table_name, s.column_name, sum(s.rows_deleted) AS rows_deleted,
                    max(s.swept_at) AS last_at
               FROM pgsweep.trigger_sweep s GROUP BY 1, 2) t
         ON t.table_name = c.table_name AND t.column_name = c.column_name;
COMMENT ON VIEW pgsweep.rule_counters IS
    'Per rule totals since install (monotonic), unfolded trigger sweeps included';
