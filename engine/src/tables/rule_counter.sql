-- The totals per rule of the runs pruned from the history, never pruned itself: the view
-- pgsweep.rule_counters adds the history still kept, so what a Prometheus counter reads only
-- ever grows. Written only when runs are pruned (run_housekeeping, in the transaction that
-- deletes them), never by a running cleanup: two runs at once never wait on each other for it.
CREATE TABLE IF NOT EXISTS pgsweep.rule_counter (
    table_name          text        NOT NULL,
    column_name         name        NOT NULL,
    rows_deleted_total  bigint      NOT NULL DEFAULT 0,
    rows_archived_total bigint      NOT NULL DEFAULT 0,
    runs_total          bigint      NOT NULL DEFAULT 0,
    failures_total      bigint      NOT NULL DEFAULT 0,
    last_success_at     timestamptz,
    PRIMARY KEY (table_name, column_name)
);
COMMENT ON TABLE pgsweep.rule_counter IS
    'Per rule totals of the runs pruned from the history (pgsweep.rule_counters adds the rest)';
