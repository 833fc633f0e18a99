-- Every recorded run, newest first when ordered by run_id, with the status it has now: a run
-- still 'running' whose session is gone shows as 'interrupted' even before the next run_begin
-- writes it so.
CREATE OR REPLACE VIEW pgsweep.runs AS
SELECT r.run_id, r.started_at, r.ended_at, r.ended_at - r.started_at AS duration,
       r.invoked_by, r.role_name,
       CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
            THEN 'interrupted' ELSE r.status END AS status,
       r.error, r.rows_deleted, r.rows_archived, r.batches, r.rows_given_way, r.pauses,
       r.paused_for, r.pid
  FROM pgsweep.run r;
COMMENT ON VIEW pgsweep.runs IS
    'Cleanup runs with their current status (a run whose session died shows as interrupted)';
