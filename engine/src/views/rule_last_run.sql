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
