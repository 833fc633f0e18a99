-- Runs that did not succeed, and rules a run skipped or failed on (column_name NULL: the run as
-- a whole), newest first.
CREATE OR REPLACE VIEW pgsweep.run_failures AS
SELECT r.run_id, rr.table_name, rr.column_name, r.invoked_by, r.role_name, r.started_at,
       r.ended_at, s.status, coalesce(rr.error, r.error) AS error
  FROM pgsweep.run r
  CROSS JOIN LATERAL (SELECT CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
                THEN 'interrupted' ELSE r.status END AS status) s
  LEFT JOIN pgsweep.run_rule rr ON rr.run_id = r.run_id AND rr.error IS NOT NULL
 WHERE s.status IN ('failed', 'interrupted') OR rr.error IS NOT NULL
 ORDER BY r.started_at DESC, r.run_id DESC;
COMMENT ON VIEW pgsweep.run_failures IS
    'Failed and interrupted runs, and the rules runs skipped or failed on, newest first';
