-- 0013_engine_1_4: Matcha Time moves to pgsweep engine 1.4 (CHANGELOG.md, "Engine 1.4"): the
-- engine's own upgrade script, then the revision recorded. Rules, triggers and the nightly job
-- carry over unchanged; the public contract keeps its names, shapes and results.
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0013_engine_1_4.sql
\set ON_ERROR_STOP on

\ir ../engine/releases/1.4/upgrade.sql

BEGIN;
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0013' WHERE version_num = '0012';
    END IF;
END $$;
COMMIT;
