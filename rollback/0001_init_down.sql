-- 0001 down: drops the whole Matcha Time schema. EVERY ROW OF EVERY TABLE IS LOST.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0001_init_down.sql
-- Alembic runs this same file for revision 0001 (downgrade).
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-function, ban-drop-table, ban-drop-type
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

DROP FUNCTION IF EXISTS refresh_deck_progress(uuid, uuid);
DROP TABLE IF EXISTS user_activity, user_stats, user_deck_progress, user_card_progress,
                     deck_flashcards, flashcards, roadmap_nodes, decks, roadmaps, users;
DROP TYPE IF EXISTS auth_provider;
-- 0001 created uuid-ossp if missing; drop it unless something outside this schema still uses it.
DO $$
BEGIN
    DROP EXTENSION IF EXISTS "uuid-ossp";
EXCEPTION WHEN dependent_objects_still_exist THEN
    RAISE NOTICE 'keeping extension uuid-ossp: other objects still use it';
END $$;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback"):
-- refuse while a newer revision is recorded, else step the recorded version back to base.
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0001') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0001'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
        DELETE FROM alembic_version WHERE version_num = '0001';
    END IF;
END $$;

COMMIT;
