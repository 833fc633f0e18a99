-- Totals per rule since the engine was installed, never pruned (the history is): what a
-- Prometheus counter reads, so it only ever grows. Written by pgsweep.run_record/run_end, and by
-- run_begin for the insert trigger's sweeps (folded from pgsweep.trigger_sweep).
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
    'Per rule totals since install, never pruned (monotonic counters for metrics)';
