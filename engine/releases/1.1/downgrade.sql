-- pgsweep engine 1.1 -> 1.0, in two transactions: the first drops what 1.1 added and its
-- release record; the second is 1.0's own install script, which puts 1.0's routines back over
-- 1.1's (same signatures). Safe to run again: should the second fail (a lock not granted), run
-- this file again and it finishes the job.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.1/downgrade.sql
\set ON_ERROR_STOP on
-- A downgrade exists to remove what 1.1 added.
-- squawk-ignore-file ban-drop-function, ban-drop-column

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;
DO $$
BEGIN
    IF to_regclass('pgsweep.release') IS NULL THEN
        RAISE EXCEPTION 'no standalone pgsweep engine is installed here';
    END IF;
    IF EXISTS (SELECT FROM pgsweep.release
                WHERE string_to_array(version, '.')::integer[] > '{1,1}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.1 is installed'
            USING HINT = 'Downgrade it to 1.1 first, with its own downgrade.sql.';
    END IF;
END $$;

-- Partition retention (1.1): 1.0 row-deletes a partitioned table (correct, slower), except
-- where a rule keeps its expired partitions in an archive schema: 1.0 would delete those rows.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_attribute
                WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                  AND attname = 'partition_archive_schema' AND NOT attisdropped)
       AND EXISTS (SELECT FROM pgsweep.expiry_rule r
                    WHERE (to_jsonb(r) ->> 'partition_archive_schema') IS NOT NULL) THEN
        RAISE EXCEPTION 'a rule keeps its expired partitions in an archive schema, which 1.0 would delete row by row'
            USING HINT = 'SELECT pgsweep.set_partition_archive(table, column, NULL) for each, or keep 1.1.';
    END IF;
END $$;
DROP FUNCTION IF EXISTS pgsweep.drop_expired_partitions(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.remove_partition(pgsweep.expiry_rule, regclass, bigint);
DROP FUNCTION IF EXISTS pgsweep.expired_partitions(pgsweep.expiry_rule);
DROP FUNCTION IF EXISTS pgsweep.set_partition_archive(regclass, name, name);
ALTER TABLE pgsweep.expiry_rule DROP COLUMN IF EXISTS partition_archive_schema;

DELETE FROM pgsweep.release WHERE version = '1.1';
COMMIT;

\ir ../1.0/install.sql
