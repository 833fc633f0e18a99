-- Rollback of 0013_engine_1_4: Matcha Time back on pgsweep engine 1.3 (the engine's own
-- downgrade script, which refuses while a rule uses what only 1.4 can run), then the revision.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0013_engine_1_4_down.sql
\set ON_ERROR_STOP on

BEGIN;
DO $$
BEGIN
    -- Nested: PL/pgSQL plans a condition whole, so the query on alembic_version may only be
    -- reached where the table exists.
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0013') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0013'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
    END IF;
END $$;
COMMIT;

\ir ../engine/releases/1.4/downgrade.sql

BEGIN;
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0012' WHERE version_num = '0013';
    END IF;
END $$;
COMMIT;
