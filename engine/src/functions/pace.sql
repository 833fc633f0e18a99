-- The pacing decision of a sweep, taken between two batches: go on (wait 0), pause for wait and
-- ask again (reason says why), or stop the run here (stop; the rest is left for the next run).
-- One function for every consumer: CALL pgsweep.sweep() (so the pg_cron job and pgsweep run)
-- and pgsweep cleanup. Its budgets are settings (pgsweep.setting), checked in this order:
--   max_run_time         the run has worked that long: stop;
--   max_replay_lag       a connected standby (pg_stat_replication) has that much WAL to replay,
--                        less room for the next batch (p_next_wal, its WAL as the caller
--                        expects it: the last batch's; at most half the budget), so that the
--                        lag stays within the budget, not the budget plus a batch;
--   max_replay_delay     a standby's replay_lag is that long;
--   pause_for_autovacuum an autovacuum worker is vacuuming the table (pg_stat_progress_vacuum);
--   pause_for_blocked    p_blocked sessions were waiting for the sweep's last batch;
--   max_wal_rate         the server wrote more WAL per second since the run started;
--   max_rows_per_second  the run deleted more rows per second (p_deleted since p_started).
-- p_started, p_deleted and p_wal_start describe the run so far. With pgsweep.pacing off only
-- max_run_time applies. Reading another role's standby and vacuum progress needs pg_monitor
-- (or pg_read_all_stats): without it those budgets see nothing to wait for.
CREATE OR REPLACE FUNCTION pgsweep.pace(
    p_table regclass, p_started timestamptz, p_deleted bigint, p_wal_start pg_lsn,
    p_blocked integer DEFAULT 0, p_next_wal bigint DEFAULT 0,
    OUT wait interval, OUT reason text, OUT stop boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_elapsed   interval := clock_timestamp() - p_started;
    v_seconds   double precision := greatest(extract(epoch FROM clock_timestamp() - p_started), 0);
    v_step      interval := pgsweep.setting('pause_step')::interval;
    v_run_time  interval := pgsweep.setting('max_run_time')::interval;
    v_lag_bytes bigint := pg_size_bytes(pgsweep.setting('max_replay_lag'));
    v_lag_time  interval := pgsweep.setting('max_replay_delay')::interval;
    v_wal_rate  bigint := pg_size_bytes(pgsweep.setting('max_wal_rate'));
    v_row_rate  double precision := pgsweep.setting('max_rows_per_second')::double precision;
    v_standby   record;
    v_ahead     double precision;
BEGIN
    wait := '0';
    stop := false;
    IF v_run_time > '0' AND v_elapsed >= v_run_time THEN
        stop := true;
        reason := format('the run''s time budget (pgsweep.max_run_time = %s) is used up',
                         v_run_time);
        RETURN;
    END IF;
    IF NOT pgsweep.setting('pacing')::boolean THEN
        RETURN;
    END IF;
    -- No standby connected (pg_stat_get_wal_senders, behind pg_stat_replication): nothing to ask.
    IF EXISTS (SELECT FROM pg_stat_get_wal_senders()) THEN
        SELECT coalesce(r.application_name, '') AS name, r.client_addr,
               pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS bytes, r.replay_lag
          INTO v_standby
          FROM pg_stat_replication r
         WHERE r.replay_lsn IS NOT NULL
         ORDER BY pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) DESC
         LIMIT 1;
        IF v_lag_bytes > 0 AND v_standby.bytes
               > v_lag_bytes - least(greatest(coalesce(p_next_wal, 0), 0), v_lag_bytes / 2) THEN
            wait := v_step;
            reason := format('standby %s (%s) has %s of WAL to replay, a batch writes about %s'
                             ' (pgsweep.max_replay_lag = %s)',
                             quote_ident(v_standby.name),
                             coalesce(host(v_standby.client_addr), 'local'),
                             pg_size_pretty(v_standby.bytes),
                             pg_size_pretty(greatest(coalesce(p_next_wal, 0), 0)),
                             pg_size_pretty(v_lag_bytes));
            RETURN;
        END IF;
        SELECT coalesce(r.application_name, '') AS name, r.client_addr, r.replay_lag
          INTO v_standby
          FROM pg_stat_replication r
         WHERE r.replay_lag IS NOT NULL
         ORDER BY r.replay_lag DESC
         LIMIT 1;
        IF v_lag_time > '0' AND v_standby.replay_lag > v_lag_time THEN
            wait := v_step;
            reason := format('standby %s (%s) replays %s behind (pgsweep.max_replay_delay = %s)',
                             quote_ident(v_standby.name), coalesce(host(v_standby.client_addr), 'local'),
                             date_trunc('second', v_standby.replay_lag), v_lag_time);
            RETURN;
        END IF;
    END IF;
    IF pgsweep.setting('pause_for_autovacuum')::boolean
       -- (The functions behind pg_stat_progress_vacuum and pg_stat_activity, for one pid:
       -- asked after every batch, the views would cost more than the rest of the decision.)
       AND EXISTS (SELECT FROM pg_stat_get_progress_info('VACUUM') v
                    WHERE v.relid = p_table
                      AND EXISTS (SELECT FROM pg_stat_get_activity(v.pid) a
                                   WHERE a.backend_type = 'autovacuum worker')) THEN
        wait := v_step;
        reason := format('autovacuum is working on %s', p_table);
        RETURN;
    END IF;
    IF pgsweep.setting('pause_for_blocked')::boolean AND coalesce(p_blocked, 0) > 0 THEN
        wait := least(v_step, 4 * pgsweep.setting('batch_target')::interval);
        reason := format('%s waited for the last batch of %s (pgsweep.pause_for_blocked)',
                         CASE WHEN p_blocked = 1 THEN '1 session'
                              ELSE p_blocked || ' sessions' END, p_table);
        RETURN;
    END IF;
    IF v_wal_rate > 0 THEN
        v_ahead := pg_wal_lsn_diff(pg_current_wal_lsn(), p_wal_start) / v_wal_rate - v_seconds;
        IF v_ahead > 0 THEN
            wait := least(v_step, make_interval(secs => v_ahead));
            reason := format('WAL written faster than pgsweep.max_wal_rate = %s per second',
                             pg_size_pretty(v_wal_rate));
            RETURN;
        END IF;
    END IF;
    IF v_row_rate > 0 THEN
        v_ahead := coalesce(p_deleted, 0) / v_row_rate - v_seconds;
        IF v_ahead > 0 THEN
            wait := least(v_step, make_interval(secs => v_ahead));
            reason := format('rows deleted faster than pgsweep.max_rows_per_second = %s',
                             v_row_rate);
            RETURN;
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.pace(regclass, timestamptz, bigint, pg_lsn, integer, bigint) IS
    'Between two sweep batches: how long to wait and why, or stop (the pacing budgets)';
