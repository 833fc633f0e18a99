-- 0003_password_reset_tokens: one row per password-reset token (hash only).
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0003_password_reset_tokens.sql
-- Alembic runs this same file for revision 0003.
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

CREATE TABLE password_reset_tokens (
    id         uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
    user_id    uuid NOT NULL REFERENCES users ON DELETE CASCADE,
    token_hash text NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,  -- null until used
    created_at timestamptz DEFAULT now()
);

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0003' WHERE version_num = '0002';
    END IF;
END $$;

COMMIT;
