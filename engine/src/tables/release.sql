-- The engine releases applied to this database, newest last: the engine's own version record,
-- apart from any application's migration history (alembic_version, flyway_schema_history, …).
CREATE TABLE IF NOT EXISTS pgsweep.release (
    version     text        PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  name        NOT NULL DEFAULT current_user
);
COMMENT ON TABLE pgsweep.release IS
    'Engine releases applied to this database (pgsweep.version() is the newest)';
