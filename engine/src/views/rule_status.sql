-- One row per rule: what it leaves, what waits, how far behind the cleanup is, what the history
-- says, and the table's size and vacuum state (docs/observability.md). garbage, expiry_lag and
-- oldest_row_age are exact (a condition or orphan rule's lag: how long it has had garbage at
-- most, see below) and cost what the garbage costs (pgsweep.rule_figures: the rule's
-- index); rows_never_expire and rows_alive are exact up to exact_count_limit() rows and the
-- planner's estimates above it (counts_estimated). delete_rate is rows per second of sweeping
-- this rule, from the last 24 hours of runs (pauses included, the insert trigger's sweeps
-- not); backlog_eta is the garbage at that rate. Everything past the first columns is history
-- and statistics, read from catalogs and pgsweep's tables.
CREATE OR REPLACE VIEW pgsweep.rule_status AS
SELECT k.table_name,
       r.column_name,
       p.problem,
       f.rows_never_expire,
       greatest(f.rows_total - f.rows_never_expire - f.garbage, 0) AS rows_alive,
       f.garbage,
       g.expiry_lag,
       now() - f.oldest_row_at AS oldest_row_age,
       coalesce(r.lag_target, pgsweep.default_lag_target()) AS lag_target,
       lr.started_at AS last_run_at,
       c.last_success_at,
       le.error AS last_error,
       d.deleted_24h,
       d.delete_rate,
       CASE WHEN f.garbage = 0 THEN '0'::interval
            WHEN d.delete_rate > 0 THEN make_interval(secs => f.garbage / d.delete_rate)
       END AS backlog_eta,
       sz.table_bytes,
       sz.index_bytes,
       s.n_dead_tup AS dead_tuples,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       g.expiry_lag <= coalesce(r.lag_target, pgsweep.default_lag_target()) AS lag_ok,
       f.rows_total,
       f.estimated AS counts_estimated,
       CASE WHEN f.garbage > 0 THEN f.cutoff_at - f.newest_garbage_at END AS newest_garbage_lag,
       lr.run_status AS last_run_status,
       le.at AS last_error_at,
       s.n_live_tup AS live_tuples
  FROM pgsweep.expiry_rule r
 CROSS JOIN LATERAL (SELECT pgsweep.table_key(r.table_name) AS table_name) k
 CROSS JOIN LATERAL (SELECT pgsweep.rule_problem(r) AS problem) p
 CROSS JOIN LATERAL pgsweep.rule_figures(r) f
 -- A partitioned table's size is its partitions' (pg_partition_tree lists no plain table).
 CROSS JOIN LATERAL (
        SELECT coalesce(sum(pg_table_size(t.relid)), pg_table_size(r.table_name)) AS table_bytes,
               coalesce(sum(pg_indexes_size(t.relid)), pg_indexes_size(r.table_name)) AS index_bytes
          FROM pg_partition_tree(r.table_name) t WHERE t.isleaf) sz
  LEFT JOIN pgsweep.rule_last_run lr
         ON lr.table_name = k.table_name AND lr.column_name = r.column_name
  LEFT JOIN pgsweep.rule_counters c
         ON c.table_name = k.table_name AND c.column_name = r.column_name
  -- How far behind: an age rule by its oldest garbage row's instant; a condition or orphan rule
  -- (no instant) by how long it has had garbage at most: since a finished run last left it
  -- clean, or since it was registered. NULL when the rule cannot run.
  CROSS JOIN LATERAL (
        SELECT CASE WHEN p.problem IS NOT NULL THEN NULL
                    WHEN f.garbage = 0 THEN '0'::interval
                    WHEN r.kind = 'age'
                        THEN greatest(f.cutoff_at - f.oldest_garbage_at, '0'::interval)
                    ELSE greatest(now() - greatest(c.last_success_at, r.registered_at),
                                  '0'::interval)
               END AS expiry_lag) g
  -- The error of the rule's last run only: a run that went well after a failure clears it.
  LEFT JOIN LATERAL (
        SELECT lr.error, lr.ended_at AS at WHERE lr.error IS NOT NULL) le ON true
  LEFT JOIN LATERAL (
        SELECT (coalesce(sum(rr.rows_deleted), 0)
                + coalesce((SELECT sum(t.rows_deleted) FROM pgsweep.trigger_sweep t
                             WHERE t.table_name = k.table_name AND t.column_name = r.column_name
                               AND t.swept_at >= now() - interval '24 hours'), 0))::bigint
                   AS deleted_24h,
               (sum(rr.rows_deleted) FILTER (WHERE ru.invoked_by <> 'trigger')
                / nullif(extract(epoch FROM sum(rr.ended_at - rr.started_at)
                                 FILTER (WHERE ru.invoked_by <> 'trigger'
                                           AND rr.rows_deleted > 0)), 0))::double precision
                   AS delete_rate
          FROM pgsweep.run_rule rr JOIN pgsweep.run ru ON ru.run_id = rr.run_id
         WHERE rr.table_name = k.table_name AND rr.column_name = r.column_name
           AND rr.started_at > now() - interval '48 hours'
           AND rr.ended_at >= now() - interval '24 hours') d ON true
  LEFT JOIN pg_stat_all_tables s ON s.relid = r.table_name;
COMMENT ON VIEW pgsweep.rule_status IS
    'Per rule: garbage and lag (exact), rows alive and never expiring (estimates above exact_count_limit()), history, size, vacuum';
COMMENT ON COLUMN pgsweep.rule_status.rows_alive IS
    'Rows not garbage whose column is set; exact up to exact_count_limit() rows, else an estimate (counts_estimated)';
COMMENT ON COLUMN pgsweep.rule_status.rows_never_expire IS
    'Rows whose column is NULL; exact up to exact_count_limit() rows, else reltuples x pg_stats.null_frac (counts_estimated)';
COMMENT ON COLUMN pgsweep.rule_status.garbage IS
    'Rows this rule marks as garbage now (exact, counted through the rule''s index)';
COMMENT ON COLUMN pgsweep.rule_status.expiry_lag IS
    'How long ago the oldest garbage row crossed the cutoff (0: no garbage); exact';
COMMENT ON COLUMN pgsweep.rule_status.delete_rate IS
    'Rows per second of this rule''s sweeping in the last 24 h of runs (NULL: nothing deleted)';
COMMENT ON COLUMN pgsweep.rule_status.backlog_eta IS
    'garbage / delete_rate: the sweeping time the backlog needs (NULL: no rate measured yet)';
COMMENT ON COLUMN pgsweep.rule_status.dead_tuples IS
    'pg_stat_all_tables.n_dead_tup: dead rows vacuum has not reclaimed yet (an estimate)';
