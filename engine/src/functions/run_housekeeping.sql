-- What committing runs' run_begin does before each run (and an in-transaction run now and
-- then), each step reading only what it changes: runs still 'running' whose session is gone
-- become 'interrupted' (a partial index holds the running ones); runs older than
-- history_retention() go (an index on started_at; their rules with them), their totals added to
-- rule_counter; the in-transaction runs that deleted nothing (pgsweep.idle_run) are added to
-- rule_counter (each rule's newest kept); the insert trigger's sweeps (pgsweep.trigger_sweep) are folded into one
-- 'trigger' run per day. A rule's outcome in a run is the run's status, except that a rule with
-- no error of a run that failed on other rules succeeded, and so did every rule of a 'stopped'
-- run but the last one it worked (the one its time budget cut): pgsweep.rule_counters and
-- pgsweep.rule_last_run say the same.
CREATE OR REPLACE FUNCTION pgsweep.run_housekeeping()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_folded jsonb;
    v_day    record;
    v_run_id bigint;
BEGIN
    UPDATE pgsweep.run r
       SET status = 'interrupted',
           ended_at = coalesce((SELECT max(rr.ended_at) FROM pgsweep.run_rule rr
                                 WHERE rr.run_id = r.run_id), r.started_at),
           error = 'the session running it ended before the run did'
     WHERE r.status = 'running' AND r.pid IS DISTINCT FROM pg_backend_pid()
       AND NOT pgsweep.run_alive(r.run_id, r.pid);
    -- The totals of the runs pruned go to rule_counter in the same transaction, so the
    -- counters (pgsweep.rule_counters: rule_counter plus the history) never go down.
    WITH gone AS (
        DELETE FROM pgsweep.run r
         WHERE r.started_at < now() - pgsweep.history_retention() AND r.status <> 'running'
        RETURNING r.run_id, r.status),
    outcome AS (
        SELECT rr.*, g.status,
               CASE WHEN rr.error IS NULL AND g.status = 'failed'
                         AND EXISTS (SELECT FROM pgsweep.run_rule o
                                      WHERE o.run_id = rr.run_id AND o.error IS NOT NULL
                                        AND o.error NOT LIKE 'skipped: %')
                    THEN 'succeeded'
                    WHEN rr.error IS NULL AND g.status = 'stopped'
                         AND EXISTS (SELECT FROM pgsweep.run_rule o
                                      WHERE o.run_id = rr.run_id AND o.error IS NULL
                                        AND (o.started_at, o.table_name, o.column_name)
                                            > (rr.started_at, rr.table_name, rr.column_name))
                    THEN 'succeeded'
                    ELSE g.status END AS outcome
          FROM gone g JOIN pgsweep.run_rule rr ON rr.run_id = g.run_id)
    INSERT INTO pgsweep.rule_counter AS c
           (table_name, column_name, rows_deleted_total, rows_archived_total, runs_total,
            failures_total, last_success_at)
    SELECT o.table_name, o.column_name, sum(o.rows_deleted), sum(o.rows_archived), count(*),
           count(*) FILTER (WHERE o.error IS NOT NULL OR o.outcome IN ('failed', 'interrupted')),
           max(o.ended_at) FILTER (WHERE o.error IS NULL AND o.outcome = 'succeeded')
      FROM outcome o
     GROUP BY o.table_name, o.column_name
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET rows_deleted_total = c.rows_deleted_total + excluded.rows_deleted_total,
           rows_archived_total = c.rows_archived_total + excluded.rows_archived_total,
           runs_total = c.runs_total + excluded.runs_total,
           failures_total = c.failures_total + excluded.failures_total,
           last_success_at = greatest(c.last_success_at, excluded.last_success_at);
    -- Each idle run is one successful run of each of its rules, and deleted nothing. Each
    -- rule's newest stays, for rule_last_run (a later failed run still shows as the last).
    WITH newest AS (
        SELECT DISTINCT ON (u.table_name, u.column_name) i.run_id
          FROM pgsweep.idle_run i
         CROSS JOIN LATERAL unnest(i.table_names, i.column_names) AS u(table_name, column_name)
         ORDER BY u.table_name, u.column_name, i.ended_at DESC, i.run_id DESC),
    gone AS (
        DELETE FROM pgsweep.idle_run i
         WHERE NOT EXISTS (SELECT FROM newest n WHERE n.run_id = i.run_id)
        RETURNING i.*)
    INSERT INTO pgsweep.rule_counter AS c (table_name, column_name, runs_total, last_success_at)
    SELECT u.table_name, u.column_name, count(*), max(g.ended_at)
      FROM gone g
     CROSS JOIN LATERAL unnest(g.table_names, g.column_names) AS u(table_name, column_name)
     GROUP BY u.table_name, u.column_name
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET runs_total = c.runs_total + excluded.runs_total,
           last_success_at = greatest(c.last_success_at, excluded.last_success_at);
    WITH gone AS (DELETE FROM pgsweep.trigger_sweep t RETURNING t.*)
    SELECT jsonb_agg(d) INTO v_folded
      FROM (SELECT g.table_name, g.column_name, date_trunc('day', g.swept_at) AS day,
                   min(g.swept_at) AS first_at, max(g.swept_at) AS last_at,
                   sum(g.rows_deleted) AS rows_deleted, count(*) AS sweeps
              FROM gone g GROUP BY 1, 2, 3) d;
    FOR v_day IN
        SELECT * FROM jsonb_to_recordset(coalesce(v_folded, '[]'))
            AS d(table_name text, column_name name, day timestamptz, first_at timestamptz,
                 last_at timestamptz, rows_deleted bigint, sweeps bigint)
    LOOP
        SELECT r.run_id INTO v_run_id FROM pgsweep.run r
         WHERE r.invoked_by = 'trigger' AND r.started_at >= v_day.day
           AND r.started_at < v_day.day + interval '1 day'
         ORDER BY r.run_id LIMIT 1;
        IF v_run_id IS NULL THEN
            INSERT INTO pgsweep.run (invoked_by, started_at, ended_at, status, role_name)
            VALUES ('trigger', v_day.first_at, v_day.last_at, 'succeeded', current_user)
            RETURNING run_id INTO v_run_id;
        END IF;
        UPDATE pgsweep.run r
           SET ended_at = greatest(r.ended_at, v_day.last_at),
               rows_deleted = r.rows_deleted + v_day.rows_deleted,
               batches = r.batches + v_day.sweeps
         WHERE r.run_id = v_run_id;
        INSERT INTO pgsweep.run_rule AS rr
               (run_id, table_name, column_name, started_at, ended_at, rows_deleted, batches)
        VALUES (v_run_id, v_day.table_name, v_day.column_name, v_day.first_at, v_day.last_at,
                v_day.rows_deleted, v_day.sweeps)
        ON CONFLICT (run_id, table_name, column_name) DO UPDATE
           SET ended_at = greatest(rr.ended_at, excluded.ended_at),
               rows_deleted = rr.rows_deleted + excluded.rows_deleted,
               batches = rr.batches + excluded.batches;
        v_run_id := NULL;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.run_housekeeping() IS
    'Mark interrupted runs, prune old history, count idle runs, fold the insert trigger''s sweeps into daily runs';
