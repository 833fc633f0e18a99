-- The engine's schema. Everything pgsweep installs lives here, apart from one event trigger
-- (event triggers belong to the database, not to a schema).
CREATE SCHEMA IF NOT EXISTS pgsweep;
COMMENT ON SCHEMA pgsweep IS 'pgsweep: expiry rules and the batched purge engine behind them';
