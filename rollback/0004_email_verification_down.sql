-- 0004 down: drops email_verification_tokens and users.email_verified (their data is lost).
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0004_email_verification_down.sql
-- Alembic runs this same file for revision 0004 (downgrade).
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-column, ban-drop-table
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

DROP TABLE IF EXISTS email_verification_tokens;
ALTER TABLE users DROP COLUMN IF EXISTS email_verified;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback"):
-- refuse while a newer revision is recorded, else step the recorded version back to 0003.
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0004') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0004'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
        UPDATE alembic_version SET version_num = '0003' WHERE version_num = '0004';
    END IF;
END $$;

COMMIT;
