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
-- Rules written before 1.0 (by Matcha Time's embedded engine) had no zone.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'value_zone' AND NOT attisdropped) THEN
        ALTER TABLE pgsweep.expiry_rule ADD COLUMN value_zone text;
    END IF;
END $$;
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';
COMMENT ON COLUMN pgsweep.expiry_rule.value_zone IS
    'The time zone the values of a timestamp or date column are in (NULL for other types)';
