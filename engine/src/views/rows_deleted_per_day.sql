-- Rows deleted per day (UTC) and rule, every way they went: runs of each kind and the insert
-- trigger (folded, plus its sweeps not folded yet), as TimescaleDB's job_stats sums a job.
CREATE OR REPLACE VIEW pgsweep.rows_deleted_per_day AS
SELECT d.day, d.table_name, d.column_name, d.invoked_by,
       count(DISTINCT d.run_id) AS runs, sum(d.rows_deleted)::bigint AS rows_deleted,
       sum(d.rows_archived)::bigint AS rows_archived, sum(d.batches)::bigint AS batches
  FROM (SELECT (rr.started_at AT TIME ZONE 'UTC')::date AS day, rr.table_name, rr.column_name,
               r.invoked_by, rr.run_id, rr.rows_deleted, rr.rows_archived, rr.batches
          FROM pgsweep.run_rule rr JOIN pgsweep.run r ON r.run_id = rr.run_id
        UNION ALL
        SELECT (t.swept_at AT TIME ZONE 'UTC')::date, t.table_name, t.column_name, 'trigger',
               NULL, t.rows_deleted, 0, 1
          FROM pgsweep.trigger_sweep t) d
 GROUP BY d.day, d.table_name, d.column_name, d.invoked_by;
COMMENT ON VIEW pgsweep.rows_deleted_per_day IS
    'Rows deleted per UTC day, rule and way of running (trigger sweeps included)';
