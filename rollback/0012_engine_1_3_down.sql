-- Rollback of 0012_engine_1_3: Matcha Time back on pgsweep engine 1.2 (the engine's own
-- downgrade script, which refuses while a rule uses what only 1.3 can run), then the revision.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0012_engine_1_3_down.sql
\set ON_ERROR_STOP on

BEGIN;
DO $$
BEGIN
    -- Nested: PL/pgSQL plans a condition whole, so the query on alembic_version may only be
    -- reached where the table exists.
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0012') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0012'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
    END IF;
END $$;
COMMIT;

\ir ../engine/releases/1.3/downgrade.sql

BEGIN;
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0011' WHERE version_num = '0012';
    END IF;
END $$;
COMMIT;
