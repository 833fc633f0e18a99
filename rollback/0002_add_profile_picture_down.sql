-- 0002 down: drops users.profile_picture_url (its data is lost).
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0002_add_profile_picture_down.sql
-- Alembic runs this same file for revision 0002 (downgrade).
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-column
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

ALTER TABLE users DROP COLUMN IF EXISTS profile_picture_url;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback"):
-- refuse while a newer revision is recorded, else step the recorded version back to 0001.
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0002') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0002'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
        UPDATE alembic_version SET version_num = '0001' WHERE version_num = '0002';
    END IF;
END $$;

COMMIT;
