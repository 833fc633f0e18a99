-- pgsweep engine 1.1: installs the expiry engine (schema pgsweep) into any PostgreSQL 15
-- database. Running it again changes nothing. (An engine an application's migrations embedded,
-- as Matcha Time's revisions 0006-0008 did, is upgraded by that application's chain, which runs
-- this file once its own objects are out of the schema: engine/src/preflight.sql.)
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.1/install.sql
-- GENERATED from engine/src by `make engine`: edit the sources, never this file. Once released
-- it never changes (engine/releases/SHA256SUMS); a change is a new release.
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF;
END $$;
-- Two installs at once (two deploy pods) take turns; the second finds the work done.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;
-- Never step an engine back: a newer release is undone only by its own downgrade.sql.
DO $$
BEGIN
    IF to_regclass('pgsweep.release') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pgsweep.release
                WHERE string_to_array(version, '.')::integer[] > '{1,1}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.1 is installed'
            USING HINT = 'Use the pgsweep that installed it, or its downgrade.sql.';
    END IF;
END $$;

-- ---- preflight.sql ----------------------------------------
-- Before anything changes: an engine that an application's own migrations embedded (its rules
-- table without pgsweep.release: Matcha Time's revisions 0006-0008) is upgraded by that
-- application's chain, which moves its own objects out of the schema first and then runs this
-- file with pgsweep.adopt_embedded on. Run on its own, this file would take those objects' grants.
DO $$
BEGIN
    IF to_regclass('pgsweep.expiry_rule') IS NOT NULL AND to_regclass('pgsweep.release') IS NULL
       AND current_setting('pgsweep.adopt_embedded', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'this database has an engine embedded by an application''s migrations'
            USING HINT = 'Upgrade it with that application''s migration chain'
                         ' (Matcha Time: pgsweep upgrade, or alembic upgrade head).';
    END IF;
END $$;

-- ---- schema.sql ----------------------------------------
-- The engine's schema. Everything pgsweep installs lives here, apart from one event trigger
-- (event triggers belong to the database, not to a schema).
CREATE SCHEMA IF NOT EXISTS pgsweep;
COMMENT ON SCHEMA pgsweep IS 'pgsweep: expiry rules and the batched purge engine behind them';

-- ---- retired.sql ----------------------------------------
-- Routines earlier engines had and this one does not, dropped where present: the engine that
-- Matcha Time's revisions 0006-0008 embedded (before the engine installed on its own) called
-- its routines with (table, column, keep_for); since 1.0 they take the rule itself. On a new
-- database this does nothing.
DO $$
DECLARE
    v_routine regprocedure;
BEGIN
    FOR v_routine IN
        SELECT to_regprocedure(signature) FROM unnest(ARRAY[
            'pgsweep.purge_batch(regclass, name, interval, text, integer)',
            'pgsweep.purge_batch_statement(regclass, name, interval, text, integer)',
            'pgsweep.purge(regclass, name, interval, integer)',
            'pgsweep.purge_range(regclass, name, interval, text, integer)',
            'pgsweep.rule_condition(regclass, name, interval, text, text)',
            'pgsweep.cutoff_literal(regclass, name, interval)',
            'pgsweep.add_rule(regclass, name, interval)']) AS signature
         WHERE to_regprocedure(signature) IS NOT NULL
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_routine);
    END LOOP;
END $$;

-- ---- tables/expiry_rule.sql ----------------------------------------
-- One row per way a row of a table becomes garbage: once <column_name> < now() - keep_for.
-- timestamptz columns compare with that instant; timestamp and date columns hold wall-clock
-- values in value_zone (UTC unless the rule says otherwise), so the instant is read in that
-- zone and never in the session's or the server's TimeZone; numeric columns hold epoch seconds.
CREATE TABLE IF NOT EXISTS pgsweep.expiry_rule (
    table_name  regclass NOT NULL,
    column_name name     NOT NULL,
    keep_for    interval NOT NULL DEFAULT '0',
    value_zone  text,
    PRIMARY KEY (table_name, column_name),
    CONSTRAINT keep_for_not_negative CHECK (keep_for >= '0')
);
-- Rules written before 1.0 (by an embedded engine) had no zone: their timestamp and date
-- columns were read in the session's TimeZone, the server's default for the scheduled job. They
-- keep reading them so, now stated: the zone is the default TimeZone of this database's sessions.
DO $$
DECLARE
    v_zone text := (SELECT s.reset_val FROM pg_settings s WHERE s.name = 'TimeZone');
    v_rule record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'value_zone' AND NOT attisdropped) THEN
        ALTER TABLE pgsweep.expiry_rule ADD COLUMN value_zone text;
        FOR v_rule IN
            UPDATE pgsweep.expiry_rule r SET value_zone = v_zone
              FROM pg_attribute a
             WHERE a.attrelid = r.table_name AND a.attname = r.column_name
               AND a.atttypid IN ('timestamp'::regtype, 'date'::regtype)
            RETURNING r.table_name, r.column_name
        LOOP
            RAISE NOTICE 'pgsweep: rule %.% now states the zone its values were read in: %',
                v_rule.table_name, v_rule.column_name, v_zone
                USING HINT = 'If they hold UTC, SELECT pgsweep.add_rule(table, column, keep_for, ''UTC'').';
        END LOOP;
    END IF;
END $$;
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';
COMMENT ON COLUMN pgsweep.expiry_rule.value_zone IS
    'The time zone the values of a timestamp or date column are in (NULL for other types)';

-- ---- tables/release.sql ----------------------------------------
-- The engine releases applied to this database, newest last: the engine's own version record,
-- apart from any application's migration history (alembic_version, flyway_schema_history, …).
CREATE TABLE IF NOT EXISTS pgsweep.release (
    version     text        PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  name        NOT NULL DEFAULT current_user
);
COMMENT ON TABLE pgsweep.release IS
    'Engine releases applied to this database (pgsweep.version() is the newest)';

-- ---- functions/add_rule.sql ----------------------------------------
-- Bring a table under the lifecycle: checks the column's type, that an index leads with the
-- column (so every purge is index-driven) and, for a timestamp or date column, the zone its
-- values are in (UTC for a new rule; an update without a zone keeps the rule's); then records
-- (or updates) the rule. A timestamptz or numeric
-- column carries no zone, so giving one is an error rather than a setting that does nothing.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_value_zone text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_table, p_column);
    v_zone text;
    v_rule pgsweep.expiry_rule;
BEGIN
    IF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        -- Updating a rule without naming a zone keeps the zone it has.
        SELECT coalesce(p_value_zone, r.value_zone) INTO v_zone FROM pgsweep.expiry_rule r
         WHERE r.table_name = p_table AND r.column_name = p_column;
        v_zone := coalesce(v_zone, p_value_zone, 'UTC');
        -- Zone names only: an abbreviation's meaning depends on the session's
        -- timezone_abbreviations ('IST' is India or Israel).
        IF NOT EXISTS (SELECT FROM pg_timezone_names WHERE name = v_zone) THEN
            RAISE EXCEPTION 'unknown time zone "%"', v_zone
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name one of pg_timezone_names, e.g. UTC or Europe/Berlin.';
        END IF;
    ELSIF p_value_zone IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % has type %, which carries no time zone to declare',
            p_column, p_table, v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'value_zone is for timestamp (without time zone) and date columns.';
    END IF;
    v_rule := ROW(p_table, p_column, coalesce(p_keep_for, '0'), v_zone);
    PERFORM pgsweep.cutoff_literal(v_rule);
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
    INSERT INTO pgsweep.expiry_rule (table_name, column_name, keep_for, value_zone)
    VALUES (v_rule.table_name, v_rule.column_name, v_rule.keep_for, v_rule.value_zone)
    ON CONFLICT (table_name, column_name)
    DO UPDATE SET keep_for = excluded.keep_for, value_zone = excluded.value_zone;
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval, text) IS
    'Register (or update) an expiry rule after checking its column type, index and zone';

-- ---- functions/batch_boundary_statement.sql ----------------------------------------
-- Where a sweep batch starting at the rows of p_condition ends: the value p_batch_size rows
-- further on in the rule's index (an index-only scan). No row: the batch is the rest.
CREATE OR REPLACE FUNCTION pgsweep.batch_boundary_statement(
    p_table regclass, p_column name, p_condition text, p_batch_size integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'SELECT b.boundary::text'
        '  FROM (SELECT %1$I AS boundary FROM %2$s WHERE %3$s ORDER BY %1$I'
        '        OFFSET %4$s LIMIT 1) b',
        p_column, p_table, p_condition, p_batch_size)
$$;
COMMENT ON FUNCTION pgsweep.batch_boundary_statement(regclass, name, text, integer) IS
    'The probe that finds where a sweep batch ends (for EXPLAIN)';

-- ---- functions/column_type.sql ----------------------------------------
CREATE OR REPLACE FUNCTION pgsweep.column_type(p_table regclass, p_column name)
RETURNS regtype
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype;
BEGIN
    SELECT a.atttypid::regtype INTO v_type
      FROM pg_attribute a
     WHERE a.attrelid = p_table AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', p_column, p_table
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN v_type;
END $$;
COMMENT ON FUNCTION pgsweep.column_type(regclass, name) IS 'The type of a table column, or an error';

-- ---- functions/cutoff_literal.sql ----------------------------------------
-- The cutoff of a rule as an SQL literal of the column's own type, so the planner sees a
-- constant it can match against the column's index. Rendered in DateStyle ISO: other styles
-- print zone abbreviations, which do not read back uniquely ('IST' for Asia/Kolkata reads back
-- as Israel time). now() - keep_for is reckoned in UTC (a day is 24 hours, whatever daylight
-- saving the session's zone observes), and a timestamp or date column takes that instant in the
-- rule's value_zone (UTC when unset): neither the session's nor the server's TimeZone moves it.
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_instant timestamptz := now() - p_rule.keep_for;
    v_zone    text := coalesce(p_rule.value_zone, 'UTC');
BEGIN
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('%L::%s', v_instant, v_type);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('%L::%s', v_instant AT TIME ZONE v_zone, v_type);
        -- Whole seconds: "ttl < 1000.5" is "ttl < 1001" for an integer ttl, hence ceil.
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            RETURN format('%s::%s', ceil(extract(epoch FROM v_instant))::bigint, v_type);
        WHEN v_type IN ('numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
            RETURN format('%s::%s', extract(epoch FROM v_instant), v_type);
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which cannot expire',
                p_rule.column_name, p_rule.table_name, v_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a timestamp, date, or a number of epoch seconds.';
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_literal(pgsweep.expiry_rule) IS
    'now() - keep_for as a literal of the column''s type (epoch seconds for numbers)';

-- ---- functions/delete_rows.sql ----------------------------------------
-- Delete the rows matching p_condition without making anyone wait for long: one pass when no
-- row is held (the common case), else SKIP LOCKED. The exception block is one subtransaction
-- per call, and a purge makes one call per rule or per committed batch, far below the 64 a
-- transaction may have before every snapshot in the cluster gets slower.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows(p_table regclass, p_condition text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    BEGIN
        RETURN pgsweep.delete_rows_waiting_briefly(p_table, p_condition);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- That pass is undone; take what is not held now.
        NULL;
    END;
    /* As in delete_rows_waiting_briefly.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, true);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows(regclass, text) IS
    'DELETE the matching rows in one pass, or with SKIP LOCKED when a row is held';

-- ---- functions/delete_rows_waiting_briefly.sql ----------------------------------------
-- The single-pass DELETE, allowed to wait 20 ms for a row lock (well under deadlock_timeout,
-- so in a lock cycle it nearly always times out before the other side's deadlock check runs:
-- only an app that had already waited 980 ms to 1 s is checked first). The SET clause
-- ends with the function, error or not.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows_waiting_briefly(p_table regclass, p_condition text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '20ms'
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    /* purge_statement quotes every identifier (%I, regclass) and value (%L) it puts into the
     * condition; plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_statement(p_table, p_condition, false);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows_waiting_briefly(regclass, text) IS
    'DELETE the matching rows in one pass, waiting at most 20 ms for any lock';

-- ---- functions/forget_dropped_rules.sql ----------------------------------------
-- Event trigger (sql_drop): the rules of a table or column that was just dropped go with it,
-- and the one who dropped it is told (NOTICE). Without this a rule would point at nothing;
-- consumers would skip it (rule_problem) but it would linger, and an OID reused by a later
-- table could make it apply there. SECURITY DEFINER: whoever drops their own table needs no
-- grant on pgsweep.expiry_rule; it takes no argument and deletes only rules of dropped objects.
CREATE OR REPLACE FUNCTION pgsweep.forget_dropped_rules()
RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_gone record;
BEGIN
    -- The DELETE runs with the owner's rights and fires whatever triggers pgsweep.expiry_rule
    -- has: only when the function's owner owns the schema and the table, so that no one who
    -- could add such a trigger gains rights by it.
    IF NOT EXISTS (SELECT FROM pg_class c
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     JOIN pg_roles o ON o.rolname = current_user
                    WHERE c.oid = 'pgsweep.expiry_rule'::regclass
                      AND c.relowner = o.oid AND n.nspowner = o.oid) THEN
        RETURN;
    END IF;
    FOR v_gone IN
        DELETE FROM pgsweep.expiry_rule r
         USING pg_event_trigger_dropped_objects() d
         WHERE r.table_name::oid = d.objid
           AND (d.object_type = 'table'
                OR (d.object_type = 'table column' AND r.column_name = d.address_names[3]))
         RETURNING d.object_type, d.object_identity, r.column_name
    LOOP
        RAISE NOTICE 'pgsweep: expiry rule on column % removed with the dropped % %',
            v_gone.column_name, v_gone.object_type, v_gone.object_identity;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.forget_dropped_rules() IS
    'Event trigger: remove the expiry rules of dropped tables and columns';

-- ---- functions/garbage_counts.sql ----------------------------------------
-- How many rows each rule would delete right now. Rules of a table are counted in order, each
-- row once: rule i counts rows matching it and none of the rules before it, so the per-table sum
-- is exactly what a sweep would delete in this transaction (barring rows others lock), and
-- every count is a range scan of rule i's own index (the earlier rules are only a filter).
-- A rule that cannot run (rule_problem) is skipped with a warning, as every consumer skips it.
CREATE OR REPLACE FUNCTION pgsweep.garbage_counts(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, garbage bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule    pgsweep.expiry_rule;
    v_table   regclass;
    v_match   text;
    v_earlier text := '';
    v_found   boolean := false;
BEGIN
    /* Identifiers are quoted with %I or are regclass output; the cutoff is a literal built by
     * cutoff_literal with %L. plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name = p_table
         ORDER BY r.table_name::text, r.column_name
    LOOP
        v_found := true;
        IF pgsweep.rule_problem(v_rule) IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                pgsweep.rule_problem(v_rule);
            CONTINUE;
        END IF;
        IF v_table IS DISTINCT FROM v_rule.table_name THEN
            v_table := v_rule.table_name;
            v_earlier := '';
        END IF;
        v_match := format('%I < %s', v_rule.column_name, pgsweep.cutoff_literal(v_rule));
        EXECUTE format('SELECT count(*) FROM %s WHERE %s%s', v_rule.table_name, v_match, v_earlier)
           INTO garbage;
        table_name := v_rule.table_name;
        column_name := v_rule.column_name;
        RETURN NEXT;
        v_earlier := v_earlier || format(' AND (%s) IS NOT TRUE', v_match);
    END LOOP;
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.garbage_counts(regclass) IS
    'Rows each expiry rule would delete now (each row counted once per table), index-driven';

-- ---- functions/instant_expression.sql ----------------------------------------
-- The instant a value of the rule's column stands for, as an SQL expression over the column
-- (for ages and reports: "how long ago did this row expire"). The inverse of cutoff_literal.
CREATE OR REPLACE FUNCTION pgsweep.instant_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
BEGIN
    IF v_type = 'timestamptz'::regtype THEN
        RETURN format('%I', p_rule.column_name);
    ELSIF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        RETURN format('(%I::timestamp AT TIME ZONE %L)', p_rule.column_name,
                      coalesce(p_rule.value_zone, 'UTC'));
    END IF;
    RETURN format('to_timestamp(%I::double precision)', p_rule.column_name);
END $$;
COMMENT ON FUNCTION pgsweep.instant_expression(pgsweep.expiry_rule) IS
    'The instant a value of the rule''s column stands for, as an SQL expression';

-- ---- functions/lock_rule.sql ----------------------------------------
-- Take a rule's lock (pgsweep.rule_lock_keys), waiting up to p_wait (pgsweep.lock_wait) for
-- another run to finish the rule; false when that run still holds it. A hold this session
-- already has is a leftover of a run that failed half-way (every consumer releases its own when
-- it is done), so it is dropped first: the lock is then held exactly once.
CREATE OR REPLACE FUNCTION pgsweep.lock_rule(p_table regclass, p_column name, p_wait interval)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k record;
    v_until timestamptz := clock_timestamp() + coalesce(p_wait, '0');
BEGIN
    SELECT * INTO k FROM pgsweep.rule_lock_keys(p_table, p_column);
    WHILE pgsweep.rule_lock_holder(p_table, p_column) = pg_backend_pid() LOOP
        PERFORM pg_advisory_unlock(k.classid, k.objid);
    END LOOP;
    LOOP
        IF pg_try_advisory_lock(k.classid, k.objid) THEN
            RETURN true;
        END IF;
        EXIT WHEN clock_timestamp() >= v_until;
        PERFORM pg_sleep(least(0.05, extract(epoch FROM v_until - clock_timestamp())));
    END LOOP;
    RETURN false;
END $$;
COMMENT ON FUNCTION pgsweep.lock_rule(regclass, name, interval) IS
    'Take the advisory lock of a rule (session-level), waiting at most p_wait; false if held';

-- ---- functions/next_batch_size.sql ----------------------------------------
-- The size of a sweep's next batch, from the last one's (p_size rows, p_took long): grown or
-- shrunk towards pgsweep.batch_target, by at most 1.2x up and 0.5x down per batch (as GitLab's
-- batch optimizer), within pgsweep.batch_min .. batch_max; halved when sessions waited for the
-- last batch (p_blocked > 0). Unchanged with pgsweep.pacing off.
CREATE OR REPLACE FUNCTION pgsweep.next_batch_size(
    p_size integer, p_took interval, p_blocked integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_target double precision;
    v_took   double precision := extract(epoch FROM p_took);
    v_factor double precision;
BEGIN
    IF NOT pgsweep.setting('pacing')::boolean THEN
        RETURN p_size;
    END IF;
    v_target := extract(epoch FROM pgsweep.setting('batch_target')::interval);
    IF coalesce(p_blocked, 0) > 0 THEN
        v_factor := 0.5;
    ELSIF v_took <= 0 THEN
        v_factor := 1.2;
    ELSE
        v_factor := greatest(0.5, least(1.2, v_target / v_took));
    END IF;
    RETURN greatest(pgsweep.setting('batch_min')::integer,
                    least(pgsweep.setting('batch_max')::integer,
                          round(p_size * v_factor)::integer));
END $$;
COMMENT ON FUNCTION pgsweep.next_batch_size(integer, interval, integer) IS
    'The adaptive batch size of a sweep: towards pgsweep.batch_target per batch, bounded';

-- ---- functions/pace.sql ----------------------------------------
-- The pacing decision of a sweep, taken between two batches: go on (wait 0), pause for wait and
-- ask again (reason says why), or stop the run here (stop; the rest is left for the next run).
-- One function for every consumer: CALL pgsweep.sweep() (so the pg_cron job and pgsweep run)
-- and pgsweep cleanup. Its budgets are settings (pgsweep.setting), checked in this order:
--   max_run_time         the run has worked that long: stop;
--   max_replay_lag       a connected standby (pg_stat_replication) has that much WAL to replay,
--                        less room for the next batch (p_next_wal, its WAL as the caller
--                        expects it: the last batch's; at most half the budget), so that the
--                        lag stays within the budget, not the budget plus a batch;
--   max_replay_delay     a standby's replay_lag is that long;
--   pause_for_autovacuum an autovacuum worker is vacuuming the table (pg_stat_progress_vacuum);
--   pause_for_blocked    p_blocked sessions were waiting for the sweep's last batch;
--   max_wal_rate         the server wrote more WAL per second since the run started;
--   max_rows_per_second  the run deleted more rows per second (p_deleted since p_started).
-- p_started, p_deleted and p_wal_start describe the run so far. With pgsweep.pacing off only
-- max_run_time applies. Reading another role's standby and vacuum progress needs pg_monitor
-- (or pg_read_all_stats): without it those budgets see nothing to wait for.
CREATE OR REPLACE FUNCTION pgsweep.pace(
    p_table regclass, p_started timestamptz, p_deleted bigint, p_wal_start pg_lsn,
    p_blocked integer DEFAULT 0, p_next_wal bigint DEFAULT 0,
    OUT wait interval, OUT reason text, OUT stop boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_elapsed   interval := clock_timestamp() - p_started;
    v_seconds   double precision := greatest(extract(epoch FROM clock_timestamp() - p_started), 0);
    v_step      interval := pgsweep.setting('pause_step')::interval;
    v_run_time  interval := pgsweep.setting('max_run_time')::interval;
    v_lag_bytes bigint := pg_size_bytes(pgsweep.setting('max_replay_lag'));
    v_lag_time  interval := pgsweep.setting('max_replay_delay')::interval;
    v_wal_rate  bigint := pg_size_bytes(pgsweep.setting('max_wal_rate'));
    v_row_rate  double precision := pgsweep.setting('max_rows_per_second')::double precision;
    v_standby   record;
    v_ahead     double precision;
BEGIN
    wait := '0';
    stop := false;
    IF v_run_time > '0' AND v_elapsed >= v_run_time THEN
        stop := true;
        reason := format('the run''s time budget (pgsweep.max_run_time = %s) is used up',
                         v_run_time);
        RETURN;
    END IF;
    IF NOT pgsweep.setting('pacing')::boolean THEN
        RETURN;
    END IF;
    -- No standby connected (pg_stat_get_wal_senders, behind pg_stat_replication): nothing to ask.
    IF EXISTS (SELECT FROM pg_stat_get_wal_senders()) THEN
        SELECT coalesce(r.application_name, '') AS name, r.client_addr,
               pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint AS bytes, r.replay_lag
          INTO v_standby
          FROM pg_stat_replication r
         WHERE r.replay_lsn IS NOT NULL
         ORDER BY pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn) DESC
         LIMIT 1;
        IF v_lag_bytes > 0 AND v_standby.bytes
               > v_lag_bytes - least(greatest(coalesce(p_next_wal, 0), 0), v_lag_bytes / 2) THEN
            wait := v_step;
            reason := format('standby %s (%s) has %s of WAL to replay, a batch writes about %s'
                             ' (pgsweep.max_replay_lag = %s)',
                             quote_ident(v_standby.name),
                             coalesce(host(v_standby.client_addr), 'local'),
                             pg_size_pretty(v_standby.bytes),
                             pg_size_pretty(greatest(coalesce(p_next_wal, 0), 0)),
                             pg_size_pretty(v_lag_bytes));
            RETURN;
        END IF;
        SELECT coalesce(r.application_name, '') AS name, r.client_addr, r.replay_lag
          INTO v_standby
          FROM pg_stat_replication r
         WHERE r.replay_lag IS NOT NULL
         ORDER BY r.replay_lag DESC
         LIMIT 1;
        IF v_lag_time > '0' AND v_standby.replay_lag > v_lag_time THEN
            wait := v_step;
            reason := format('standby %s (%s) replays %s behind (pgsweep.max_replay_delay = %s)',
                             quote_ident(v_standby.name), coalesce(host(v_standby.client_addr), 'local'),
                             date_trunc('second', v_standby.replay_lag), v_lag_time);
            RETURN;
        END IF;
    END IF;
    IF pgsweep.setting('pause_for_autovacuum')::boolean
       -- (The functions behind pg_stat_progress_vacuum and pg_stat_activity, for one pid:
       -- asked after every batch, the views would cost more than the rest of the decision.)
       AND EXISTS (SELECT FROM pg_stat_get_progress_info('VACUUM') v
                    WHERE v.relid = p_table
                      AND EXISTS (SELECT FROM pg_stat_get_activity(v.pid) a
                                   WHERE a.backend_type = 'autovacuum worker')) THEN
        wait := v_step;
        reason := format('autovacuum is working on %s', p_table);
        RETURN;
    END IF;
    IF pgsweep.setting('pause_for_blocked')::boolean AND coalesce(p_blocked, 0) > 0 THEN
        wait := least(v_step, 4 * pgsweep.setting('batch_target')::interval);
        reason := format('%s waited for the last batch of %s (pgsweep.pause_for_blocked)',
                         CASE WHEN p_blocked = 1 THEN '1 session'
                              ELSE p_blocked || ' sessions' END, p_table);
        RETURN;
    END IF;
    IF v_wal_rate > 0 THEN
        v_ahead := pg_wal_lsn_diff(pg_current_wal_lsn(), p_wal_start) / v_wal_rate - v_seconds;
        IF v_ahead > 0 THEN
            wait := least(v_step, make_interval(secs => v_ahead));
            reason := format('WAL written faster than pgsweep.max_wal_rate = %s per second',
                             pg_size_pretty(v_wal_rate));
            RETURN;
        END IF;
    END IF;
    IF v_row_rate > 0 THEN
        v_ahead := coalesce(p_deleted, 0) / v_row_rate - v_seconds;
        IF v_ahead > 0 THEN
            wait := least(v_step, make_interval(secs => v_ahead));
            reason := format('rows deleted faster than pgsweep.max_rows_per_second = %s',
                             v_row_rate);
            RETURN;
        END IF;
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.pace(regclass, timestamptz, bigint, pg_lsn, integer, bigint) IS
    'Between two sweep batches: how long to wait and why, or stop (the pacing budgets)';

-- ---- functions/pg_cron_unusable_reason.sql ----------------------------------------
-- NULL when cron.schedule() can be called from this database; otherwise the reason.
CREATE OR REPLACE FUNCTION pgsweep.pg_cron_unusable_reason()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cron_database text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        RETURN 'pg_cron is not installed on this server';
    END IF;
    -- cron.database_name is readable by superusers and pg_read_all_settings only.
    BEGIN
        v_cron_database := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN format('role %s may not read cron.database_name (pg_read_all_settings)', current_user);
    END;
    -- The setting exists only once the library is loaded (shared_preload_libraries).
    IF v_cron_database IS NULL OR v_cron_database = '' THEN
        RETURN 'pg_cron is not loaded (it must be in shared_preload_libraries)';
    END IF;
    IF v_cron_database <> current_database() THEN
        RETURN format('this database (%s) is not cron.database_name (%s)',
                      current_database(), v_cron_database);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN 'the pg_cron extension is not created in this database (CREATE EXTENSION pg_cron)';
    END IF;
    IF NOT has_schema_privilege('cron', 'USAGE')
       OR NOT has_function_privilege('cron.schedule(text, text, text)', 'EXECUTE') THEN
        RETURN format('role %s may not use cron.schedule()', current_user);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.pg_cron_unusable_reason() IS
    'Why pg_cron cannot schedule jobs from this database, or NULL when it can';

-- ---- functions/purge_few.sql ----------------------------------------
-- At most p_rows garbage rows of a rule, oldest first, skipping rows another transaction holds:
-- the insert trigger's bounded batch. Rows are locked before they are deleted, so the trigger
-- never waits, whatever the app holds.
CREATE OR REPLACE FUNCTION pgsweep.purge_few(p_rule pgsweep.expiry_rule, p_rows integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    /* skip_locked_statement and rule_condition quote every identifier (%I, regclass) and
     * value (%L).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.skip_locked_statement(
        p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule.column_name, p_rows);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.purge_few(pgsweep.expiry_rule, integer) IS
    'Delete up to p_rows garbage rows of a rule, oldest first, skipping held rows';

-- ---- functions/purge_range.sql ----------------------------------------
-- One batch of CALL pgsweep.sweep(): the rule's garbage from p_from (the start, when NULL) up to
-- the boundary, deleted in one pass. next_from is where the next batch starts, NULL when the
-- rule has no garbage left. An empty range means every row from p_from to the boundary shares
-- the boundary's value (tokens issued by one statement) or is held: then up to p_batch_size
-- rows of that value go by ctid, skipping held ones. The next batch probes again from the
-- value; once only held rows are left at it, the sweep moves past it.
CREATE OR REPLACE FUNCTION pgsweep.purge_range(
    p_rule pgsweep.expiry_rule, p_from text, p_batch_size integer,
    OUT deleted bigint, OUT next_from text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- next_from is a value of the column as text, read back by the next batch: render it in a form
-- that reads back exactly whatever the caller's settings (see cutoff_literal).
SET datestyle = 'ISO, YMD'
SET extra_float_digits = 3
AS $$
DECLARE
    v_table     regclass := p_rule.table_name;
    v_column    name := p_rule.column_name;
    v_condition text;
    v_type      regtype;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_condition := pgsweep.rule_condition(p_rule, p_from);
    /* Built by batch_boundary_statement and rule_condition from quoted parts (%I, %L, regclass).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.batch_boundary_statement(v_table, v_column, v_condition, p_batch_size)
       INTO next_from;
    IF next_from IS NULL THEN
        deleted := pgsweep.delete_rows(v_table, v_condition);
        RETURN;
    END IF;
    deleted := pgsweep.delete_rows(v_table, pgsweep.rule_condition(p_rule, p_from, next_from));
    IF deleted > 0 THEN
        RETURN;
    END IF;
    v_type := pgsweep.column_type(v_table, v_column);
    EXECUTE pgsweep.skip_locked_statement(
        v_table, format('%s AND %I = %L::%s', v_condition, v_column, next_from, v_type),
        NULL, p_batch_size);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    IF deleted = 0 THEN
        -- Every row left at this value is held (they wait for the next run): the next value.
        -- (Fewer than a batch but more than none: the next probe finds a range past the value,
        -- or none; moving on already could skip a row whose update committed mid-statement.)
        EXECUTE format('SELECT min(%1$I)::text FROM %2$s WHERE %3$s AND %1$I > %4$L::%5$s',
                       v_column, v_table, v_condition, next_from, v_type)
           INTO next_from;
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.purge_range(pgsweep.expiry_rule, text, integer) IS
    'Delete one sweep batch of a rule in one pass; returns the count and where the next starts';

-- ---- functions/purge_rule.sql ----------------------------------------
-- Every garbage row of one rule, in the caller's transaction: one DELETE, planned with its
-- cutoff (the rule's index for a few rows, a sequential scan for a backlog).
CREATE OR REPLACE FUNCTION pgsweep.purge_rule(p_rule pgsweep.expiry_rule)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgsweep.delete_rows(p_rule.table_name, pgsweep.rule_condition(p_rule));
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';

-- ---- functions/purge_statement.sql ----------------------------------------
-- The DELETE of the rows matching p_condition. With p_skip_locked the rows are first taken
-- with FOR UPDATE SKIP LOCKED (skip_locked_statement): rows another transaction holds are left
-- alone, at the price of a second visit to every row and a WAL record for each lock. A function
-- of its own so that EXPLAIN (pgsweep verify, the tests) can inspect exactly the statement a
-- purge runs.
CREATE OR REPLACE FUNCTION pgsweep.purge_statement(
    p_table regclass, p_condition text, p_skip_locked boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_skip_locked THEN
        RETURN pgsweep.skip_locked_statement(p_table, p_condition);
    END IF;
    RETURN format('DELETE FROM %s WHERE %s', p_table, p_condition);
END $$;
COMMENT ON FUNCTION pgsweep.purge_statement(regclass, text, boolean) IS
    'The DELETE a purge runs for a condition, with or without SKIP LOCKED (for EXPLAIN)';

-- ---- functions/remove_rule.sql ----------------------------------------
-- Take a rule (or, with no column, every rule of the table) out of the lifecycle; returns how
-- many were removed. The table's rows are untouched.
CREATE OR REPLACE FUNCTION pgsweep.remove_rule(p_table regclass, p_column name DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_removed integer;
BEGIN
    DELETE FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND (p_column IS NULL OR r.column_name = p_column);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN v_removed;
END $$;
COMMENT ON FUNCTION pgsweep.remove_rule(regclass, name) IS
    'Remove a table''s rule on a column (or all its rules); returns how many';

-- ---- functions/rule_condition.sql ----------------------------------------
-- The garbage of one rule as an SQL condition: column < cutoff, within [p_from, p_before) when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_rule pgsweep.expiry_rule, p_from text DEFAULT NULL, p_before text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column    name := p_rule.column_name;
    v_type      regtype := pgsweep.column_type(p_rule.table_name, v_column);
    v_condition text := format('%I < %s', v_column, pgsweep.cutoff_literal(p_rule));
BEGIN
    IF p_from IS NOT NULL THEN
        v_condition := v_condition || format(' AND %I >= %L::%s', v_column, p_from, v_type);
    END IF;
    IF p_before IS NOT NULL THEN
        v_condition := v_condition || format(' AND %I < %L::%s', v_column, p_before, v_type);
    END IF;
    RETURN v_condition;
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(pgsweep.expiry_rule, text, text) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';

-- ---- functions/rule_lock_holder.sql ----------------------------------------
-- The session that holds a rule's lock (pgsweep.rule_lock_keys) now, or NULL.
CREATE OR REPLACE FUNCTION pgsweep.rule_lock_holder(p_table regclass, p_column name)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT l.pid FROM pg_locks l, pgsweep.rule_lock_keys(p_table, p_column) k
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
               AND l.database = (SELECT d.oid FROM pg_database d
                                  WHERE d.datname = current_database())
               AND l.classid = k.classid::oid AND l.objid = k.objid::oid
             LIMIT 1);
END $$;
COMMENT ON FUNCTION pgsweep.rule_lock_holder(regclass, name) IS
    'The backend pid of the run working on a rule now, or NULL';

-- ---- functions/rule_lock_keys.sql ----------------------------------------
-- Never two runs of one rule at once (two pg_cron jobs, a job and pgsweep run, two containers):
-- every consumer that deletes batch by batch holds a session-level advisory lock per rule while
-- it works on it. Its key is two integers, as pg_locks shows them (locktype 'advisory',
-- objsubid 2): classid the table's oid (as a signed integer: the same 32 bits) and objid
-- hashtext('pgsweep.rule:' || column), so that pg_locks.classid::regclass names the table.
-- Session-level, because CALL pgsweep.sweep() commits per batch; released when the rule is done
-- (or the session ends).
CREATE OR REPLACE FUNCTION pgsweep.rule_lock_keys(
    p_table regclass, p_column name, OUT classid integer, OUT objid integer)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_table::oid::integer, hashtext('pgsweep.rule:' || p_column)
$$;
COMMENT ON FUNCTION pgsweep.rule_lock_keys(regclass, name) IS
    'The advisory lock keys of a rule (pg_locks.classid, objid)';

-- ---- functions/rule_problem.sql ----------------------------------------
-- Why a rule cannot run now, or NULL when it can: its table or column is gone (dropped, or the
-- column renamed, where no event trigger removed the rule at the time) or the column's type
-- changed to one that cannot expire. Every consumer skips such a rule, says so, and goes on
-- with the others; pgsweep verify fails it.
CREATE OR REPLACE FUNCTION pgsweep.rule_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN NOT EXISTS (SELECT FROM pg_class c
                          WHERE c.oid = p_rule.table_name AND c.relkind IN ('r', 'p'))
            THEN format('table %s no longer exists', p_rule.table_name::oid)
        WHEN a.atttypid IS NULL
            THEN format('column %I of %s no longer exists', p_rule.column_name, p_rule.table_name)
        WHEN a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype,
                                'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                'numeric'::regtype, 'double precision'::regtype, 'real'::regtype)
            THEN format('column %I of %s has type %s, which cannot expire',
                        p_rule.column_name, p_rule.table_name, a.atttypid::regtype)
    END
      FROM (SELECT NULL) AS one
      LEFT JOIN pg_attribute a
             ON a.attrelid = p_rule.table_name AND a.attname = p_rule.column_name
            AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION pgsweep.rule_problem(pgsweep.expiry_rule) IS
    'Why a rule cannot run (its table or column is gone, or cannot expire), or NULL';

-- ---- functions/sessions_waiting_for_me.sql ----------------------------------------
-- How many sessions wait for a lock this session holds (pg_blocking_pids). A sweep asks at the
-- end of a batch, before it commits: an app query that met a row the batch deleted waits now.
-- Only sessions waiting for a lock are asked about (pg_stat_get_activity: reading pg_locks
-- instead costs half a millisecond a batch); another role's sessions show their wait only to
-- a member of pg_read_all_stats (pg_monitor).
CREATE OR REPLACE FUNCTION pgsweep.sessions_waiting_for_me()
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pg_stat_get_activity(NULL) a
     WHERE a.wait_event_type = 'Lock' AND a.pid <> pg_backend_pid()
       AND pg_backend_pid() = ANY (pg_blocking_pids(a.pid))
$$;
COMMENT ON FUNCTION pgsweep.sessions_waiting_for_me() IS
    'The sessions waiting for a lock this session holds (a sweep batch before its commit)';

-- ---- functions/setting.sql ----------------------------------------
-- The pacing settings of CALL pgsweep.sweep(), pgsweep run and pgsweep cleanup, and their
-- defaults: one line each, here and nowhere else (docs/scheduling.md, "Pacing"). Each can be set
-- like any custom setting: ALTER DATABASE app SET pgsweep.max_replay_lag = '128MB', ALTER ROLE,
-- SET in a session, or PGOPTIONS='-c pgsweep.pacing=off'. An empty value means the default.
CREATE OR REPLACE FUNCTION pgsweep.setting(p_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_default text := CASE p_name
        WHEN 'pacing'              THEN 'on'    -- off: fixed batches, no pauses (as 1.0)
        WHEN 'batch_target'        THEN '25ms'  -- the time a batch should take
        WHEN 'batch_min'           THEN '100'   -- rows: the smallest batch it shrinks to
        WHEN 'batch_max'           THEN '50000' -- rows: the largest batch it grows to
        WHEN 'max_replay_lag'      THEN '64MB'  -- WAL a connected standby has not replayed
        WHEN 'max_replay_delay'    THEN '1min'  -- a standby's replay_lag
        WHEN 'max_wal_rate'        THEN '0'     -- WAL bytes per second of the run (0: none)
        WHEN 'max_rows_per_second' THEN '0'     -- rows deleted per second of the run (0: none)
        WHEN 'max_run_time'        THEN '0'     -- a run stops after this, the rest next run
        WHEN 'pause_for_autovacuum' THEN 'on'   -- wait while autovacuum works the table
        WHEN 'pause_for_blocked'   THEN 'on'    -- back off when a batch made a session wait
        WHEN 'pause_step'          THEN '1s'    -- the longest single sleep before a re-check
        WHEN 'lock_wait'           THEN '1s'    -- wait for another run of a rule, then skip
    END;
BEGIN
    IF v_default IS NULL THEN
        RAISE EXCEPTION 'unknown pgsweep setting %', p_name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN coalesce(nullif(current_setting('pgsweep.' || p_name, true), ''), v_default);
END $$;
COMMENT ON FUNCTION pgsweep.setting(text) IS
    'A pacing setting (pgsweep.<name>), or its default';

-- ---- functions/skip_locked_statement.sql ----------------------------------------
-- The DELETE of the rows matching p_condition that no other transaction holds (taken first with
-- FOR UPDATE SKIP LOCKED), optionally the first p_limit of them in p_order. A row is named by
-- its table and ctid together: in a partitioned table (or one with inheritance children) two
-- partitions have rows at the same ctid, so a ctid alone would also delete a live row of
-- another partition. The ctid list still drives a TID scan; the pair makes it exact.
CREATE OR REPLACE FUNCTION pgsweep.skip_locked_statement(
    p_table regclass, p_condition text, p_order name DEFAULT NULL, p_limit integer DEFAULT NULL)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'WITH picked AS MATERIALIZED ('
        'SELECT tableoid AS t, ctid AS c FROM %1$s WHERE %2$s%3$s%4$s FOR UPDATE SKIP LOCKED) '
        'DELETE FROM %1$s WHERE ctid = ANY (ARRAY(SELECT p.c FROM picked p))'
        ' AND (tableoid, ctid) IN (SELECT p.t, p.c FROM picked p)',
        p_table, p_condition,
        CASE WHEN p_order IS NOT NULL THEN format(' ORDER BY %I', p_order) ELSE '' END,
        CASE WHEN p_limit IS NOT NULL THEN format(' LIMIT %s', p_limit) ELSE '' END)
$$;
COMMENT ON FUNCTION pgsweep.skip_locked_statement(regclass, text, name, integer) IS
    'The DELETE of the matching rows no one holds (by table and ctid), optionally the first N';

-- ---- functions/sweep_on_insert.sql ----------------------------------------
-- AFTER INSERT ... FOR EACH STATEMENT: one bounded batch of one rule of the table.
--   TG_ARGV[0]: the rule column to sweep; TG_ARGV[1]: rows per sweep (default 10);
--   TG_ARGV[2]: insert statements of the session that skip the sweep after a short batch
--   (default 50).
-- Only sweep rules whose rows the app never updates again (see docs, "Triggers"): SKIP LOCKED
-- keeps the trigger from waiting, and choosing such rows keeps the app from waiting on it.
-- A sweep costs a freshly planned statement even when it finds nothing, about as much as the
-- insert itself (make bench, S4). So a batch that comes back short, meaning the garbage is
-- gone, lets the session's next inserts skip the sweep; a full batch means there is more, and
-- the next insert sweeps again. The countdown is a session setting, transactional like any.
-- SECURITY DEFINER so the app's role needs no grant on pgsweep; it can delete only rows the
-- table's own rule marks as garbage, and only in tables the engine's owner owns (whose DELETE
-- triggers run with those same rights). Errors become warnings: an insert never fails for it.
CREATE OR REPLACE FUNCTION pgsweep.sweep_on_insert()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule     pgsweep.expiry_rule;
    v_rows     integer := coalesce(TG_ARGV[1]::integer, 10);
    v_skip     integer := coalesce(TG_ARGV[2]::integer, 50);
    -- One countdown per table and rule column in this session.
    v_countdown_setting text :=
        format('pgsweep.skip_%s_%s', TG_RELID::oid, left(md5(TG_ARGV[0]), 8));
    v_countdown integer :=
        coalesce(nullif(current_setting(v_countdown_setting, true), '')::integer, 0);
    v_deleted  integer;
BEGIN
    -- Under REPEATABLE READ or SERIALIZABLE, locking a row changed since the snapshot raises a
    -- serialization error; leave the work to the scheduled cleanup.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN NULL;
    END IF;
    IF v_countdown > 0 THEN
        PERFORM set_config(v_countdown_setting, (v_countdown - 1)::text, false);
        RETURN NULL;
    END IF;
    -- The DELETE runs with the function owner's rights, and so do the DELETE triggers of the
    -- table it fires: on a table someone else owns, its owner's triggers would run with rights
    -- that owner may lack. Sweep only the engine owner's own tables.
    IF NOT EXISTS (SELECT FROM pg_class c JOIN pg_roles o ON o.oid = c.relowner
                    WHERE c.oid = TG_RELID AND o.rolname = current_user) THEN
        RAISE WARNING 'pgsweep: opportunistic cleanup of % skipped: the table is not owned by %',
            TG_RELID::regclass, current_user
            USING HINT = 'The scheduled sweep still cleans it; or have the engine''s owner own it.';
        PERFORM set_config(v_countdown_setting, v_skip::text, false);
        RETURN NULL;
    END IF;
    SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
     WHERE r.table_name = TG_RELID AND r.column_name = TG_ARGV[0];
    IF FOUND THEN
        BEGIN
            v_deleted := pgsweep.purge_few(v_rule, v_rows);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pgsweep: opportunistic cleanup of % skipped: %', TG_RELID::regclass, SQLERRM;
        END;
    END IF;
    PERFORM set_config(v_countdown_setting,
                       CASE WHEN coalesce(v_deleted, 0) < v_rows THEN v_skip ELSE 0 END::text, false);
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_on_insert() IS
    'Insert trigger: delete one small batch of one expiry rule of the table (args: column, rows, skip)';

-- ---- functions/sweep_table.sql ----------------------------------------
-- All rules of one table, in the caller's transaction, one DELETE per rule. A table without
-- rules is an error, never a silent "0 rows"; a rule that cannot run (rule_problem) is skipped
-- with a warning. p_batch_size is checked and otherwise unused (each rule is one DELETE); it
-- stays so that callers of the embedded engine keep working.
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_rule  pgsweep.expiry_rule;
    v_found boolean := false;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r WHERE r.table_name = p_table ORDER BY r.column_name
    LOOP
        v_found := true;
        IF pgsweep.rule_problem(v_rule) IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                pgsweep.rule_problem(v_rule);
            CONTINUE;
        END IF;
        v_total := v_total + pgsweep.purge_rule(v_rule);
    END LOOP;
    IF NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';

-- ---- functions/unlock_rule.sql ----------------------------------------
-- Release a rule's lock taken by pgsweep.lock_rule (true when this session held it).
CREATE OR REPLACE FUNCTION pgsweep.unlock_rule(p_table regclass, p_column name)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_advisory_unlock(k.classid, k.objid) FROM pgsweep.rule_lock_keys(p_table, p_column) k
$$;
COMMENT ON FUNCTION pgsweep.unlock_rule(regclass, name) IS
    'Release the advisory lock of a rule taken by pgsweep.lock_rule';

-- ---- functions/version.sql ----------------------------------------
-- The engine release installed here: the newest row of pgsweep.release.
CREATE OR REPLACE FUNCTION pgsweep.version()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.version FROM pgsweep.release r
     ORDER BY string_to_array(r.version, '.')::integer[] DESC LIMIT 1
$$;
COMMENT ON FUNCTION pgsweep.version() IS 'The engine release installed in this database';

-- ---- procedures/sweep.sql ----------------------------------------
-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- A rule that cannot run (rule_problem) is skipped with a warning; the others go on.
-- Never two runs of one rule at once: each rule is worked under its advisory lock
-- (pgsweep.lock_rule); a rule another run holds for longer than pgsweep.lock_wait is skipped
-- with a warning. Paced (pgsweep.pace, docs/scheduling.md "Pacing"): the batch size follows
-- pgsweep.batch_target from p_batch_size on, and between batches the run pauses while a budget
-- is exceeded (standby replay lag, autovacuum on the table, sessions waiting for the sweep, WAL
-- and row rates), each pause said in a NOTICE with its reason, or stops at pgsweep.max_run_time.
-- A standby (a server in recovery) is refused before anything is read.
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 5000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  pgsweep.expiry_rule;
    v_batch record;
    v_pace  record;
    v_from  text;
    v_problem text;
    v_rule_total bigint;
    v_found boolean := false;
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_wal_start pg_catalog.pg_lsn;
    v_size integer;
    v_next_size integer;
    v_batch_started timestamptz;
    v_batch_lsn pg_catalog.pg_lsn;
    v_batch_wal bigint;
    v_blocked integer;
    v_reason text;
    v_slept_from timestamptz;
    v_stop boolean := false;
    v_pauses integer := 0;
    v_paused_for interval := '0'::pg_catalog.interval;
BEGIN
    deleted := 0;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pgsweep: this server is a standby (in recovery): nothing to sweep here'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run the sweep on the primary; its deletes reach the standby by replication.';
    END IF;
    v_wal_start := pg_catalog.pg_current_wal_lsn();
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_found := true;
        v_problem := pgsweep.rule_problem(v_rule);
        IF v_problem IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            CONTINUE;
        END IF;
        IF v_stop THEN
            RAISE NOTICE 'pgsweep: % (%) left for the next run', v_rule.table_name, v_rule.column_name;
            CONTINUE;
        END IF;
        IF NOT pgsweep.lock_rule(v_rule.table_name, v_rule.column_name,
                                 pgsweep.setting('lock_wait')::pg_catalog.interval) THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: another run is working on it (pid %)',
                v_rule.table_name, v_rule.column_name,
                coalesce(pgsweep.rule_lock_holder(v_rule.table_name, v_rule.column_name)::text, '?');
            CONTINUE;
        END IF;
        v_from := NULL;
        v_rule_total := 0;
        v_size := p_batch_size;
        LOOP
            v_batch_started := pg_catalog.clock_timestamp();
            v_batch_lsn := pg_catalog.pg_current_wal_lsn();
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule, v_from, v_size) AS b;
            -- Before the commit: whoever waits for this batch's row locks waits now.
            v_blocked := pgsweep.sessions_waiting_for_me();
            COMMIT;
            v_batch_wal := pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
                                                      v_batch_lsn)::bigint;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.next_from IS NULL;
            v_from := v_batch.next_from;
            v_next_size := pgsweep.next_batch_size(
                v_size, pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) v_batch_started,
                v_blocked);
            -- The next batch's WAL, expected from this one's per row (for the replay budget).
            v_batch_wal := v_batch_wal OPERATOR(pg_catalog./)
                GREATEST(v_batch.deleted, 1::bigint)
                OPERATOR(pg_catalog.*) v_next_size;
            v_size := v_next_size;
            v_reason := NULL;
            LOOP
                SELECT p.wait, p.reason, p.stop INTO v_pace
                  FROM pgsweep.pace(v_rule.table_name, v_started,
                                    deleted OPERATOR(pg_catalog.+) v_rule_total, v_wal_start,
                                    v_blocked, v_batch_wal) AS p;
                IF v_pace.stop THEN
                    RAISE NOTICE 'pgsweep: stopping % (%): %; the rest is left for the next run',
                        v_rule.table_name, v_rule.column_name, v_pace.reason;
                    v_stop := true;
                    EXIT;
                END IF;
                EXIT WHEN v_pace.wait OPERATOR(pg_catalog.<=) '0'::pg_catalog.interval;
                IF v_pace.reason IS DISTINCT FROM v_reason THEN
                    v_pauses := v_pauses OPERATOR(pg_catalog.+) 1;
                    RAISE NOTICE 'pgsweep: pausing % (%): %', v_rule.table_name,
                        v_rule.column_name, v_pace.reason;
                    v_reason := v_pace.reason;
                END IF;
                v_slept_from := pg_catalog.clock_timestamp();
                PERFORM pg_catalog.pg_sleep_for(v_pace.wait);
                -- No snapshot held from one pause step to the next (vacuum's horizon moves on).
                COMMIT;
                v_paused_for := v_paused_for OPERATOR(pg_catalog.+)
                    (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) v_slept_from);
                v_blocked := 0;
            END LOOP;
            EXIT WHEN v_stop;
            IF p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(p_pause);
            END IF;
        END LOOP;
        PERFORM pgsweep.unlock_rule(v_rule.table_name, v_rule.column_name);
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    IF v_pauses OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'pgsweep: paused % time(s), % in all', v_pauses,
            pg_catalog.date_trunc('millisecond', v_paused_for);
    END IF;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch; CALL outside a transaction block';

-- ---- views/rules.sql ----------------------------------------
-- Every rule, with what an operator asks first: the column's type, the zone its values are in,
-- and why the rule cannot run, if it cannot (NULL: it runs). The pgsweep command reads this.
CREATE OR REPLACE VIEW pgsweep.rules AS
SELECT r.table_name::text AS table_name,
       r.column_name,
       r.keep_for,
       r.value_zone,
       a.atttypid::regtype AS column_type,
       pgsweep.rule_problem(r) AS problem
  FROM pgsweep.expiry_rule r
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = r.table_name AND a.attname = r.column_name
        AND a.attnum > 0 AND NOT a.attisdropped;
COMMENT ON VIEW pgsweep.rules IS
    'Expiry rules with their column type, value zone and problem (NULL: the rule runs)';

-- ---- event_triggers/forget_dropped_rules.sql ----------------------------------------
-- The event trigger behind pgsweep.forget_dropped_rules(). Creating an event trigger needs a
-- superuser; without one the engine still installs, consumers skip rules whose table or column
-- is gone (pgsweep.rule_problem) and pgsweep verify reports them, and this says so.
-- The trigger fires on every DROP in the database, whoever runs it, superusers included: it is
-- created only when a superuser also owns the function it calls, the rule table and the schema.
-- An engine installed by another role (who may replace that function, or add a trigger to that
-- table, at will) gets none, even when a superuser runs this again.
DO $$
DECLARE
    v_owner name := (SELECT r.rolname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
                      WHERE p.oid = 'pgsweep.forget_dropped_rules()'::regprocedure);
BEGIN
    IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules') THEN
        RETURN;
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'pgsweep: event trigger pgsweep_forget_dropped_rules not created (needs a superuser)'
            USING HINT = 'Rules of dropped tables are skipped and reported by pgsweep verify instead.';
    ELSIF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = v_owner)
          -- The function deletes from pgsweep.expiry_rule, firing its triggers: whoever owns
          -- that table or its schema must be that same superuser (the function checks it too).
          OR (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
               WHERE c.oid = 'pgsweep.expiry_rule'::regclass) IS DISTINCT FROM v_owner
          OR (SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
               WHERE n.nspname = 'pgsweep') IS DISTINCT FROM v_owner THEN
        RAISE NOTICE 'pgsweep: event trigger pgsweep_forget_dropped_rules not created: the engine belongs to % (its function), % (its rule table) and % (its schema), not to one superuser',
            v_owner,
            (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
              WHERE c.oid = 'pgsweep.expiry_rule'::regclass),
            (SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
              WHERE n.nspname = 'pgsweep')
            USING HINT = 'A trigger that runs on every DROP may only call a superuser''s function.'
                         ' Rules of dropped tables are skipped and reported by pgsweep verify instead.';
    ELSE
        CREATE EVENT TRIGGER pgsweep_forget_dropped_rules ON sql_drop
            EXECUTE FUNCTION pgsweep.forget_dropped_rules();
    END IF;
END $$;

-- ---- grants.sql ----------------------------------------
-- Nothing that deletes is executable by PUBLIC; roles are granted what they need explicitly
-- (docs, "Roles"). PUBLIC may use the schema, to name its objects, and reads none of its tables.
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep FROM PUBLIC;
GRANT USAGE ON SCHEMA pgsweep TO PUBLIC;

INSERT INTO pgsweep.release (version) VALUES ('1.1') ON CONFLICT (version) DO NOTHING;

COMMIT;
