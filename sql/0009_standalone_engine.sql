-- 0009_standalone_engine: Matcha Time becomes an app on the standalone pgsweep engine.
--   * the engine is now released on its own (engine/releases/, schema pgsweep, its version in
--     pgsweep.release): this revision installs release 1.0 over the engine 0006-0008 embedded
--     (its rules and triggers carry over; the routines take the rule itself from now on);
--   * deck progress, Matcha's own computation, leaves the engine's schema:
--     pgsweep.deck_progress becomes public.deck_progress;
--   * the nightly pg_cron job 0007 registered sweeps every rule of the database, one short
--     transaction per batch (CALL pgsweep.sweep();), instead of the token tables alone in one
--     transaction. Jobs made by hand or by `pgsweep schedule` are left as they are.
-- The public contract (cleanup_expired_*(), cleanup_all_expired_tokens(), the insert triggers,
-- refresh_deck_progress, refresh_stale_deck_progress) keeps its names, shapes and results.
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0009_standalone_engine.sql
-- Alembic runs this same file for revision 0009. Safe to run again.
\set ON_ERROR_STOP on

-- First the app's own objects leave the engine's schema (so that the engine's install, which
-- revokes PUBLIC's rights on every routine in it, finds none of them), then the engine.
BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

-- Share of a user's decks, now in the app's schema. As in 0006, it runs with its caller's
-- rights and PUBLIC may execute it (a function in public is executable by PUBLIC by default):
-- it reads only through the caller's own table privileges.
CREATE OR REPLACE FUNCTION public.deck_progress(p_user_id uuid, p_deck_ids uuid[])
RETURNS TABLE (deck_id uuid, total_cards integer, mastered_cards integer, cards_due_today integer,
               total_practices integer, last_practiced_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.deck_id,
           count(df.flashcard_id)::integer,
           count(ucp.mastered_at)::integer,
           (count(*) FILTER (WHERE ucp.next_review_at <= now()))::integer,
           coalesce(sum(ucp.times_correct + ucp.times_wrong), 0)::integer,
           max(ucp.last_review_at)
      FROM unnest(p_deck_ids) AS d (deck_id)
      LEFT JOIN public.deck_flashcards df ON df.deck_id = d.deck_id
      LEFT JOIN public.user_card_progress ucp
             ON ucp.user_id = p_user_id AND ucp.flashcard_id = df.flashcard_id
     GROUP BY d.deck_id
$$;
COMMENT ON FUNCTION public.deck_progress(uuid, uuid[]) IS
    'Progress figures of a user''s decks, computed from deck_flashcards and user_card_progress';

CREATE OR REPLACE FUNCTION public.refresh_deck_progress(p_user_id uuid, p_deck_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_user_id IS NULL OR p_deck_id IS NULL THEN
        RAISE EXCEPTION 'refresh_deck_progress(user, deck): user and deck may not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO public.user_deck_progress AS udp (
        user_id, deck_id, total_cards, mastered_cards, cards_due_today,
        total_practices, last_practiced_at, updated_at)
    SELECT p_user_id, p.deck_id, p.total_cards, p.mastered_cards, p.cards_due_today,
           p.total_practices, p.last_practiced_at, now()
      FROM public.deck_progress(p_user_id, ARRAY[p_deck_id]) AS p
    ON CONFLICT (user_id, deck_id) DO UPDATE
       SET total_cards = excluded.total_cards,
           mastered_cards = excluded.mastered_cards,
           cards_due_today = excluded.cards_due_today,
           total_practices = excluded.total_practices,
           last_practiced_at = excluded.last_practiced_at,
           updated_at = excluded.updated_at;
END $$;
COMMENT ON FUNCTION public.refresh_deck_progress(uuid, uuid) IS
    'Recompute one user''s progress row for one deck (upsert)';

CREATE OR REPLACE FUNCTION public.refresh_stale_deck_progress(p_user_id uuid)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_refreshed integer;
BEGIN
    IF p_user_id IS NULL THEN
        RAISE EXCEPTION 'refresh_stale_deck_progress(user): the user may not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- One statement for all stale decks (not a call per deck).
    UPDATE public.user_deck_progress udp
       SET total_cards = p.total_cards,
           mastered_cards = p.mastered_cards,
           cards_due_today = p.cards_due_today,
           total_practices = p.total_practices,
           last_practiced_at = p.last_practiced_at,
           updated_at = now()
      FROM public.deck_progress(
               p_user_id,
               ARRAY(SELECT s.deck_id FROM public.user_deck_progress s
                      WHERE s.user_id = p_user_id
                        AND (s.updated_at IS NULL OR s.updated_at < now() - interval '1 hour'))) AS p
     WHERE udp.user_id = p_user_id AND udp.deck_id = p.deck_id;
    GET DIAGNOSTICS v_refreshed = ROW_COUNT;
    RETURN v_refreshed;
END $$;
COMMENT ON FUNCTION public.refresh_stale_deck_progress(uuid) IS
    'Recompute the user''s deck-progress rows older than one hour (or never set); returns how many';

-- No routine uses it any more; its one definition is public.deck_progress above.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS pgsweep.deck_progress(uuid, uuid[]);

-- The nightly job 0007 registered (recorded in pgsweep.scheduled_job, command unchanged since)
-- now sweeps every rule. The cron references run only where pg_cron's tables exist here.
DO $$
DECLARE
    v_jobid bigint;
BEGIN
    IF to_regclass('cron.job') IS NULL OR to_regclass('pgsweep.scheduled_job') IS NULL THEN
        RETURN;
    END IF;
    SELECT c.jobid INTO v_jobid FROM cron.job c
      JOIN pgsweep.scheduled_job s ON s.jobid = c.jobid AND s.jobname = c.jobname
     WHERE c.jobname = 'cleanup-expired-tokens' AND c.command = 'SELECT cleanup_all_expired_tokens();';
    IF v_jobid IS NOT NULL THEN
        PERFORM cron.alter_job(v_jobid, command => 'CALL pgsweep.sweep();');
        RAISE NOTICE 'pgsweep: pg_cron job cleanup-expired-tokens (jobid %) now runs CALL pgsweep.sweep();', v_jobid;
    END IF;
END $$;

-- The engine's install refuses an embedded engine unless its application adopts it: this one.
SET pgsweep.adopt_embedded = on;
COMMIT;

\ir ../engine/releases/1.0/install.sql

BEGIN;
RESET pgsweep.adopt_embedded;
-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0009' WHERE version_num = '0008';
    END IF;
END $$;

COMMIT;
