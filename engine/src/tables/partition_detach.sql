-- The partitions a cleanup is detaching with DETACH PARTITION ... CONCURRENTLY, each recorded
-- (and committed) before the detach starts and forgotten in the transaction that drops, moves
-- or attaches it again: what the next run repairs should the sweeping session end in between
-- (a partition half-detached, or detached and a table of its own). A pending detach not
-- recorded here is another session's (an app migration's) and pgsweep leaves it alone.
-- partition is the schema-qualified name at the detach (a standalone table has no other link
-- to its parent); bound is pg_get_expr(relpartbound) in UTC and ISO dates, as ATTACH PARTITION
-- takes it back; checks are the CHECK constraints the partition had before the detach.
CREATE TABLE IF NOT EXISTS pgsweep.partition_detach (
    partition    text        PRIMARY KEY,
    parent       regclass    NOT NULL,
    bound        text        NOT NULL,
    checks       text[]      NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    role_name    name        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE pgsweep.partition_detach IS
    'Concurrent partition detaches a cleanup started and has not finished (dropped or attached again)';
