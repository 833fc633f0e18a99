-- What one run did to one rule. table_name is text, not regclass, so the history of a table
-- outlives the table (and reads the same after a dump and restore).
CREATE TABLE IF NOT EXISTS pgsweep.run_rule (
    run_id         bigint      NOT NULL REFERENCES pgsweep.run ON DELETE CASCADE,
    table_name     text        NOT NULL,
    column_name    name        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at       timestamptz,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    rows_archived  bigint      NOT NULL DEFAULT 0,
    batches        bigint      NOT NULL DEFAULT 0,
    rows_given_way bigint,
    pauses         bigint      NOT NULL DEFAULT 0,
    paused_for     interval    NOT NULL DEFAULT '0',
    error          text,
    PRIMARY KEY (run_id, table_name, column_name)
);
-- Created with the table, empty (see run.sql).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS run_rule_rule_idx
    ON pgsweep.run_rule (table_name, column_name, started_at);
COMMENT ON TABLE pgsweep.run_rule IS
    'What each run did to each rule (table_name as text: history outlives a dropped table)';
