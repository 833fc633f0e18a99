-- One row per way a row of a table becomes garbage: once <column_name> < now() - keep_for.
-- timestamptz columns compare with that instant; timestamp and date columns hold wall-clock
-- values in value_zone (UTC unless the rule says otherwise), so the instant is read in that
-- zone and never in the session's or the server's TimeZone; numeric columns hold epoch seconds.
CREATE TABLE IF NOT EXISTS pgsweep.expiry_rule (
    table_name  regclass NOT NULL,
    column_name name     NOT NULL,
    keep_for    interval NOT NULL DEFAULT '0',
    value_zone  text,
    PRIMARY KEY (table_name, column_name),
    CONSTRAINT keep_for_not_negative CHECK (keep_for >= '0')
);
-- Rules written before 1.0 (by an embedded engine) had no zone: their timestamp and date
-- columns were read in the session's TimeZone, the server's default for the scheduled job. They
-- keep reading them so, now stated: the zone is the default TimeZone of this database's sessions.
DO $$
DECLARE
    v_zone text := (SELECT s.reset_val FROM pg_settings s WHERE s.name = 'TimeZone');
    v_rule record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'value_zone' AND NOT attisdropped) THEN
        ALTER TABLE pgsweep.expiry_rule ADD COLUMN value_zone text;
        FOR v_rule IN
            UPDATE pgsweep.expiry_rule r SET value_zone = v_zone
              FROM pg_attribute a
             WHERE a.attrelid = r.table_name AND a.attname = r.column_name
               AND a.atttypid IN ('timestamp'::regtype, 'date'::regtype)
            RETURNING r.table_name, r.column_name
        LOOP
            RAISE WARNING 'pgsweep: rule %.% now states the zone its values were read in: %',
                v_rule.table_name, v_rule.column_name, v_zone
                USING HINT = 'If they hold UTC, SELECT pgsweep.add_rule(table, column, keep_for, ''UTC'').';
        END LOOP;
    END IF;
END $$;
-- Since 1.1 a rule has a kind (docs/rules.md):
--   age:       column_name < now() - keep_for (epoch_unit says how a number counts time);
--   condition: the rule's condition alone; column_name is the indexed column its batches walk;
--   orphan:    the parent_table row whose parent_key equals child_key (column_name when NULL)
--              no longer exists; column_name is the indexed column its batches walk.
-- Any kind may add a condition (validated and stored deparsed by pgsweep.checked_condition).
ALTER TABLE pgsweep.expiry_rule
    ADD COLUMN IF NOT EXISTS epoch_unit   text,
    ADD COLUMN IF NOT EXISTS kind         text NOT NULL DEFAULT 'age',
    ADD COLUMN IF NOT EXISTS condition    text,
    ADD COLUMN IF NOT EXISTS parent_table regclass,
    ADD COLUMN IF NOT EXISTS parent_key   name,
    ADD COLUMN IF NOT EXISTS child_key    text,
    ADD COLUMN IF NOT EXISTS archive_to   regclass;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'pgsweep.expiry_rule'::regclass
                                               AND conname = 'kind_known') THEN
        ALTER TABLE pgsweep.expiry_rule
            ADD CONSTRAINT epoch_unit_known CHECK (epoch_unit IN ('seconds', 'milliseconds')),
            ADD CONSTRAINT kind_known CHECK (kind IN ('age', 'condition', 'orphan')),
            ADD CONSTRAINT condition_rule_has_condition
                CHECK (kind <> 'condition' OR condition IS NOT NULL),
            ADD CONSTRAINT orphan_rule_has_parent
                CHECK ((kind = 'orphan') = (parent_table IS NOT NULL AND parent_key IS NOT NULL));
    END IF;
END $$;
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';
COMMENT ON COLUMN pgsweep.expiry_rule.value_zone IS
    'The time zone the values of a timestamp or date column are in (NULL for other types)';
-- 1.1: the expiry lag a rule may reach before verify and health go red (NULL: the default,
-- pgsweep.default_lag_target()).
ALTER TABLE pgsweep.expiry_rule ADD COLUMN IF NOT EXISTS lag_target interval;
COMMENT ON COLUMN pgsweep.expiry_rule.lag_target IS
    'Largest acceptable expiry lag (age past the cutoff of the oldest garbage row); NULL: the default';
COMMENT ON COLUMN pgsweep.expiry_rule.epoch_unit IS
    'How a numeric column counts epoch time: seconds (NULL: seconds) or milliseconds';
COMMENT ON COLUMN pgsweep.expiry_rule.kind IS
    'age (column < now() - keep_for), condition (the condition alone) or orphan (parent gone)';
COMMENT ON COLUMN pgsweep.expiry_rule.condition IS
    'An SQL condition on the table''s own columns that a row must also meet (validated, deparsed)';
COMMENT ON COLUMN pgsweep.expiry_rule.parent_table IS 'Orphan rules: the table the parent rows are in';
COMMENT ON COLUMN pgsweep.expiry_rule.parent_key IS 'Orphan rules: the parent''s key column';
COMMENT ON COLUMN pgsweep.expiry_rule.child_key IS
    'Orphan rules: the expression of the child''s columns that gives the parent key (NULL: column_name)';
COMMENT ON COLUMN pgsweep.expiry_rule.archive_to IS
    'The table the rule''s rows move into as they are deleted (NULL: deleted only)';
-- 1.1: where a partitioned table's partitions past the cutoff go instead of being dropped
-- (pgsweep.set_partition_archive). Appended, so an upgraded 1.0 has the columns in this order.
ALTER TABLE pgsweep.expiry_rule ADD COLUMN IF NOT EXISTS partition_archive_schema name;
COMMENT ON COLUMN pgsweep.expiry_rule.partition_archive_schema IS
    'Schema that partitions entirely past the cutoff are moved into as plain tables (NULL: dropped)';
-- 1.2: the type the rule's column had when the rule was registered (pgsweep.save_rule). A value
-- means what that type says (an instant, a wall-clock time in value_zone, an epoch number): a
-- column retyped since (ALTER TABLE ... ALTER COLUMN ... TYPE) holds values the rule was never
-- told how to read, so the rule reports a problem (pgsweep.rule_problem) until registered again.
-- Rules of an upgraded engine are taken to be registered for the type their column has now.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'registered_type' AND NOT attisdropped) THEN
        ALTER TABLE pgsweep.expiry_rule ADD COLUMN registered_type regtype;
        UPDATE pgsweep.expiry_rule r SET registered_type = a.atttypid
          FROM pg_attribute a
         WHERE a.attrelid = r.table_name AND a.attname = r.column_name
           AND a.attnum > 0 AND NOT a.attisdropped;
    END IF;
END $$;
COMMENT ON COLUMN pgsweep.expiry_rule.registered_type IS
    'The type column_name had when the rule was registered; a rule whose column has another type now cannot run';
-- 1.2: when the rule was first registered (re-registering keeps it). A condition or orphan rule
-- has no instant to age its garbage by: its expiry lag counts from the last time a finished
-- run left it clean, or from here when none has (pgsweep.rule_status). Rules of an older
-- engine count from the upgrade.
ALTER TABLE pgsweep.expiry_rule
    ADD COLUMN IF NOT EXISTS registered_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN pgsweep.expiry_rule.registered_at IS
    'When the rule was first registered (kept when it is registered again)';
