-- 0001_init: the Matcha Time base schema (users, roadmaps, decks, flashcards, progress, stats).
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0001_init.sql
-- Alembic runs this same file for revision 0001.
-- The column types are the app's contract (schema-facts.md): char(2) codes and int counters.
-- squawk-ignore-file ban-char-field, prefer-bigint-over-int
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

CREATE EXTENSION IF NOT EXISTS "uuid-ossp";

CREATE TYPE auth_provider AS ENUM ('email', 'google');

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    username      text NOT NULL UNIQUE,
    email         text NOT NULL UNIQUE,
    password_hash text,  -- null for OAuth users
    google_id     text UNIQUE,
    auth_provider auth_provider NOT NULL DEFAULT 'email',
    created_at    timestamptz DEFAULT now(),
    CONSTRAINT check_auth_credentials CHECK (
        (auth_provider = 'email' AND password_hash IS NOT NULL)
        OR (auth_provider = 'google' AND google_id IS NOT NULL)
    )
);
CREATE INDEX idx_users_google_id ON users (google_id) WHERE google_id IS NOT NULL;

CREATE TABLE roadmaps (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    title         text NOT NULL,
    description   text,
    language_from char(2) NOT NULL,
    language_to   char(2) NOT NULL,
    created_at    timestamptz DEFAULT now(),
    UNIQUE (language_from, language_to, title)
);
CREATE INDEX idx_roadmaps_langs ON roadmaps (language_from, language_to);

CREATE TABLE decks (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    title         text NOT NULL,
    description   text,
    language_from char(2) NOT NULL,
    language_to   char(2) NOT NULL,
    created_at    timestamptz DEFAULT now()
);
CREATE INDEX idx_decks_langs ON decks (language_from, language_to);

CREATE TABLE roadmap_nodes (
    id             uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    roadmap_id     uuid NOT NULL REFERENCES roadmaps ON DELETE CASCADE,
    deck_id        uuid NOT NULL REFERENCES decks,
    parent_node_id uuid REFERENCES roadmap_nodes ON DELETE SET NULL,
    pos_x          int NOT NULL DEFAULT 0,
    pos_y          int NOT NULL DEFAULT 0,
    created_at     timestamptz DEFAULT now()
);
CREATE INDEX idx_nodes_roadmap ON roadmap_nodes (roadmap_id);

CREATE TABLE flashcards (
    id            uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    term          text NOT NULL,
    translation   text NOT NULL,
    language_from char(2) NOT NULL,
    language_to   char(2) NOT NULL,
    created_at    timestamptz DEFAULT now(),
    CONSTRAINT unique_flashcard UNIQUE (term, translation, language_from, language_to)
);
CREATE INDEX idx_flashcards_lookup ON flashcards (language_from, language_to, term);

CREATE TABLE deck_flashcards (
    deck_id      uuid NOT NULL REFERENCES decks ON DELETE CASCADE,
    flashcard_id uuid NOT NULL REFERENCES flashcards,
    PRIMARY KEY (deck_id, flashcard_id)
);
CREATE INDEX idx_df_deck ON deck_flashcards (deck_id) INCLUDE (flashcard_id);

CREATE TABLE user_card_progress (
    user_id        uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    flashcard_id   uuid NOT NULL REFERENCES flashcards ON DELETE CASCADE,
    next_review_at timestamptz NOT NULL DEFAULT now(),
    last_review_at timestamptz,
    times_correct  int NOT NULL DEFAULT 0,
    times_wrong    int NOT NULL DEFAULT 0,
    mastered_at    timestamptz,  -- null = not mastered
    updated_at     timestamptz DEFAULT now(),
    PRIMARY KEY (user_id, flashcard_id)
);
CREATE INDEX idx_progress_user_mastered ON user_card_progress (user_id)
    WHERE mastered_at IS NOT NULL;
CREATE INDEX idx_practice_session ON user_card_progress (user_id, flashcard_id, next_review_at)
    INCLUDE (times_correct, times_wrong, last_review_at);

CREATE TABLE user_deck_progress (
    user_id           uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    deck_id           uuid NOT NULL REFERENCES decks ON DELETE CASCADE,
    total_cards       int NOT NULL DEFAULT 0,
    mastered_cards    int NOT NULL DEFAULT 0,
    cards_due_today   int NOT NULL DEFAULT 0,
    total_practices   int NOT NULL DEFAULT 0,
    last_practiced_at timestamptz,
    updated_at        timestamptz DEFAULT now(),
    PRIMARY KEY (user_id, deck_id)
);
CREATE INDEX idx_udp_user ON user_deck_progress (user_id);

CREATE TABLE user_stats (
    user_id             uuid PRIMARY KEY REFERENCES users ON DELETE CASCADE,
    current_streak_days int NOT NULL DEFAULT 0,
    longest_streak_days int NOT NULL DEFAULT 0,
    total_reviews       int NOT NULL DEFAULT 0,
    total_cards_learned int NOT NULL DEFAULT 0,
    last_review_date    date,
    created_at          timestamptz DEFAULT now(),
    updated_at          timestamptz DEFAULT now()
);

CREATE TABLE user_activity (
    user_id       uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    activity_date date NOT NULL,
    reviews_count int NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, activity_date)
);
CREATE INDEX idx_activity_user_date ON user_activity (user_id, activity_date DESC);

-- The app's original definition; 0006 replaces it with a pinned search_path.
CREATE FUNCTION refresh_deck_progress(p_user_id uuid, p_deck_id uuid) RETURNS void
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

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF NOT EXISTS (SELECT FROM alembic_version) THEN
            INSERT INTO alembic_version (version_num) VALUES ('0001');
        END IF;
    END IF;
END $$;

COMMIT;
