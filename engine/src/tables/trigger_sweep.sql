-- The insert trigger's sweeps that deleted rows, one short row each (never one per insert: a
-- sweep runs at most once per skip countdown and only a sweep that deleted writes). Insert-only,
-- so inserting sessions never wait on each other for it; pgsweep.run_begin folds the rows into
-- one 'trigger' run per day and the rule's counters, and empties this table.
CREATE TABLE IF NOT EXISTS pgsweep.trigger_sweep (
    table_name   text        NOT NULL,
    column_name  name        NOT NULL,
    swept_at     timestamptz NOT NULL DEFAULT now(),
    rows_deleted bigint      NOT NULL
);
COMMENT ON TABLE pgsweep.trigger_sweep IS
    'Insert-trigger sweeps not yet folded into pgsweep.run (per day) and pgsweep.rule_counter';
