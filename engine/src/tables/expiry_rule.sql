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
            RAISE NOTICE 'pgsweep: rule %.% now states the zone its values were read in: %',
                v_rule.table_name, v_rule.column_name, v_zone
                USING HINT = 'If they hold UTC, SELECT pgsweep.add_rule(table, column, keep_for, ''UTC'').';
        END LOOP;
    END IF;
END $$;
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';
COMMENT ON COLUMN pgsweep.expiry_rule.value_zone IS
    'The time zone the values of a timestamp or date column are in (NULL for other types)';
-- 1.1: where a partitioned table's partitions past the cutoff go instead of being dropped
-- (pgsweep.set_partition_archive). Appended, so an upgraded 1.0 has the columns in this order.
ALTER TABLE pgsweep.expiry_rule ADD COLUMN IF NOT EXISTS partition_archive_schema name;
COMMENT ON COLUMN pgsweep.expiry_rule.partition_archive_schema IS
    'Schema that partitions entirely past the cutoff are moved into as plain tables (NULL: dropped)';
