-- 0005_refresh_tokens: long-lived refresh tokens (hash only), garbage once expired.
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0005_refresh_tokens.sql
-- Alembic runs this same file for revision 0005.
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id      uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    token_hash   text NOT NULL UNIQUE,  -- SHA-256 of the token; UNIQUE is also the lookup index
    device_info  text,
    ip_address   text,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz DEFAULT now(),
    last_used_at timestamptz DEFAULT now()
);
CREATE INDEX idx_refresh_tokens_user_id ON refresh_tokens (user_id);

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0005' WHERE version_num = '0004';
    END IF;
END $$;

COMMIT;
