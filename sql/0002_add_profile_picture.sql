-- 0002_add_profile_picture: users.profile_picture_url.
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0002_add_profile_picture.sql
-- Alembic runs this same file for revision 0002.
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

ALTER TABLE users ADD COLUMN profile_picture_url text;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0002' WHERE version_num = '0001';
    END IF;
END $$;

COMMIT;
