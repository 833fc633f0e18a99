-- pgsweep engine 1.0, 1.1, 1.2 or 1.3 -> 1.4. The install script of a release upgrades any older
-- standalone engine in place (tables grow with ADD COLUMN IF NOT EXISTS, routines are replaced,
-- routines whose signature changed are dropped first: engine/src/retired.sql), so the upgrade is
-- that script, in one transaction. Migration tools that run files in a transaction of their own
-- use install.embed.sql of this release as their upgrade.
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.4/upgrade.sql
\set ON_ERROR_STOP on
\ir install.sql
