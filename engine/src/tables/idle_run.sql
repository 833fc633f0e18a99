-- Runs inside one transaction (sweep_table, the cleanup functions over it) that deleted,
-- archived and failed nothing: one short insert-only row each instead of a run and its rules,
-- so that the app's frequent calls cost one insert (docs/observability.md). The rules it swept
-- are the parallel arrays; run_id is the one run_begin drew (no pgsweep.run row has it).
-- run_housekeeping folds the rows into pgsweep.rule_counter (runs_total, last_success_at), all
-- but each rule's newest, which pgsweep.rule_last_run shows as the rule's last run when it is;
-- pgsweep.rule_counters adds the rows not folded yet.
CREATE TABLE IF NOT EXISTS pgsweep.idle_run (
    run_id       bigint      NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    invoked_by   text        NOT NULL,
    role_name    name        NOT NULL DEFAULT session_user,
    table_names  text[]      NOT NULL,
    column_names name[]      NOT NULL,
    batches      bigint[]    NOT NULL
);
COMMENT ON TABLE pgsweep.idle_run IS
    'Function runs that deleted nothing, not yet folded into pgsweep.rule_counter';
