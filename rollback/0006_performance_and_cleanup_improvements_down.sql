-- 0006 down: removes the expiry lifecycle (indexes, pgsweep engine, cleanup functions,
-- triggers, refresh_stale_deck_progress) and restores 0001's refresh_deck_progress.
-- No table row is touched. Refuses (and changes nothing) if another table still uses the
-- pgsweep engine through its trigger, or if a newer revision is recorded.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0006_performance_and_cleanup_improvements_down.sql
-- Alembic runs this same file for revision 0006 (downgrade). Safe to run again.
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-function, ban-drop-schema, ban-drop-table
\set ON_ERROR_STOP on

-- Refuse before anything is dropped while a newer revision is recorded (psql runs only).
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0006') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0006'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
    END IF;
END $$;

-- Wait at most 5 s for a lock (both parts), unless the caller chose its own lock_timeout.
DO $$
BEGIN
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', false);
    END IF;
END $$;

-- Part 1, one transaction: if anything in it fails (another table's trigger or a newer
-- revision's object still uses the engine, a lock not granted), nothing has changed and
-- psql stops here. Triggers go before the functions they call.
BEGIN;

DROP TRIGGER IF EXISTS trg_password_reset_tokens_cleanup ON public.password_reset_tokens;
DROP TRIGGER IF EXISTS trg_email_verification_tokens_cleanup ON public.email_verification_tokens;
DROP TRIGGER IF EXISTS trg_refresh_tokens_cleanup ON public.refresh_tokens;

DROP FUNCTION IF EXISTS public.cleanup_all_expired_tokens();
DROP FUNCTION IF EXISTS public.cleanup_expired_password_reset_tokens();
DROP FUNCTION IF EXISTS public.cleanup_expired_email_verification_tokens();
DROP FUNCTION IF EXISTS public.cleanup_expired_refresh_tokens();
DROP FUNCTION IF EXISTS public.refresh_stale_deck_progress(uuid);

-- 0001's definition, verbatim.
CREATE OR REPLACE FUNCTION public.refresh_deck_progress(p_user_id uuid, p_deck_id uuid) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO user_deck_progress AS udp (
        user_id, deck_id, total_cards, mastered_cards, cards_due_today,
        total_practices, last_practiced_at, updated_at)
    SELECT p_user_id, p_deck_id,
           count(*),
           count(ucp.mastered_at),
           count(*) FILTER (WHERE ucp.next_review_at <= now()),
           coalesce(sum(ucp.times_correct + ucp.times_wrong), 0),
           max(ucp.last_review_at),
           now()
    FROM deck_flashcards df
    LEFT JOIN user_card_progress ucp
           ON ucp.flashcard_id = df.flashcard_id AND ucp.user_id = p_user_id
    WHERE df.deck_id = p_deck_id
    ON CONFLICT (user_id, deck_id) DO UPDATE
       SET total_cards = excluded.total_cards,
           mastered_cards = excluded.mastered_cards,
           cards_due_today = excluded.cards_due_today,
           total_practices = excluded.total_practices,
           last_practiced_at = excluded.last_practiced_at,
           updated_at = excluded.updated_at;
$$;

COMMENT ON FUNCTION public.refresh_deck_progress(uuid, uuid) IS NULL;

-- Without CASCADE: if another table's trigger still uses the engine, this fails and the whole
-- transaction changes nothing.
DROP PROCEDURE IF EXISTS pgsweep.sweep(regclass, integer, interval, bigint);
DROP FUNCTION IF EXISTS pgsweep.sweep_on_insert();
DROP FUNCTION IF EXISTS pgsweep.deck_progress(uuid, uuid[]);
DROP FUNCTION IF EXISTS pgsweep.add_rule(regclass, name, interval);
DROP FUNCTION IF EXISTS pgsweep.sweep_table(regclass, integer);
DROP FUNCTION IF EXISTS pgsweep.purge(regclass, name, interval, integer);
DROP FUNCTION IF EXISTS pgsweep.purge_batch(regclass, name, interval, text, integer);
DROP FUNCTION IF EXISTS pgsweep.purge_batch_statement(regclass, name, interval, text, integer);
DROP FUNCTION IF EXISTS pgsweep.cutoff_literal(regclass, name, interval);
DROP FUNCTION IF EXISTS pgsweep.column_type(regclass, name);
DROP TABLE IF EXISTS pgsweep.expiry_rule;
DROP SCHEMA IF EXISTS pgsweep;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0005' WHERE version_num = '0006';
    END IF;
END $$;

COMMIT;

-- Part 2, outside any transaction, once Part 1 has committed: drop the indexes without
-- blocking the app's writes. Re-running the file finishes an interrupted Part 2.
DROP INDEX CONCURRENTLY IF EXISTS idx_password_reset_tokens_expires_at;
DROP INDEX CONCURRENTLY IF EXISTS idx_password_reset_tokens_used_at;
DROP INDEX CONCURRENTLY IF EXISTS idx_password_reset_tokens_user_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_email_verification_tokens_expires_at;
DROP INDEX CONCURRENTLY IF EXISTS idx_email_verification_tokens_used_at;
DROP INDEX CONCURRENTLY IF EXISTS idx_email_verification_tokens_user_id;
DROP INDEX CONCURRENTLY IF EXISTS idx_refresh_tokens_expires_at;
