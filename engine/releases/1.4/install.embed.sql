-- For a migration tool that runs this file inside its own transaction (Flyway, sqlx,
-- golang-migrate, Django RunSQL): GENERATED from the psql file of the same name.
-- pgsweep engine 1.4: installs the expiry engine (schema pgsweep) into any PostgreSQL 15
-- database. Running it again changes nothing. (An engine an application's migrations embedded,
-- as Matcha Time's revisions 0006-0008 did, is upgraded by that application's chain, which runs
-- this file once its own objects are out of the schema: engine/src/preflight.sql.)
-- Run with:  psql -X -d "$DATABASE_URL" -f engine/releases/1.4/install.sql
-- GENERATED from engine/src by `make engine`: edit the sources, never this file. Once released
-- it never changes (engine/releases/SHA256SUMS); a change is a new release.

-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF;
END $$;
-- Two installs at once (two deploy pods) take turns; the second finds the work done.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(hashtext('pgsweep.install')); END $$;
-- An upgrade in place re-runs every CREATE ... IF NOT EXISTS, and each would say "already
-- exists, skipping": only warnings are shown until the end (the caller's level is put back there,
-- also when a migration tool runs this file inside a transaction of its own).
DO $$
BEGIN
    PERFORM set_config('pgsweep.install_client_min_messages',
                       current_setting('client_min_messages'), true);
    PERFORM set_config('client_min_messages', 'warning', true);
END $$;
-- Never step an engine back: a newer release is undone only by its own downgrade.sql.
DO $$
BEGIN
    IF to_regclass('pgsweep.release') IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pgsweep.release
                WHERE string_to_array(version, '.')::integer[] > '{1,4}'::integer[]) THEN
        RAISE EXCEPTION 'a newer pgsweep engine than 1.4 is installed'
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
-- 1.4: an engine created as the extension (CREATE EXTENSION pgsweep, docs/extension.md) is
-- upgraded only by ALTER EXTENSION pgsweep UPDATE, whose scripts are built from this file and
-- set pgsweep.extension_script = on for their own statements. This file run with psql (or by a
-- migration tool) over it would change the extension's objects behind its back.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'pgsweep')
       AND current_setting('pgsweep.extension_script', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'the pgsweep engine here is the extension: its plain install script'
                        ' would change the extension''s objects behind its back'
            USING ERRCODE = 'object_in_use',
                  HINT = 'Upgrade it with ALTER EXTENSION pgsweep UPDATE (docs/extension.md).';
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
            'pgsweep.add_rule(regclass, name, interval)',
            -- 1.0's; 1.1 added the epoch unit and the condition.
            'pgsweep.add_rule(regclass, name, interval, text)',
            -- 1.0's; 1.1 passes the rule, so that a rule that archives moves its rows.
            'pgsweep.purge_statement(regclass, text, boolean)',
            'pgsweep.delete_rows(regclass, text)',
            'pgsweep.delete_rows_waiting_briefly(regclass, text)',
            -- 1.0's; 1.1 can give the cutoff as an expression of now() (for views).
            'pgsweep.rule_condition(pgsweep.expiry_rule, text, text)',
            -- 1.2's; 1.3 never changes the caller's constraint mode (pgsweep.deferred_references).
            'pgsweep.check_constraints_now(pgsweep.expiry_rule)']) AS signature
         -- A signature naming the rule's row type is looked up only where the type exists
         -- (to_regprocedure raises on an unknown type).
         WHERE CASE WHEN signature LIKE '%pgsweep.expiry_rule%'
                         AND to_regtype('pgsweep.expiry_rule') IS NULL THEN false
                    ELSE to_regprocedure(signature) IS NOT NULL END
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
            RAISE WARNING 'pgsweep: rule %.% now states the zone its values were read in: %',
                v_rule.table_name, v_rule.column_name, v_zone
                USING HINT = 'If they hold UTC, SELECT pgsweep.add_rule(table, column, keep_for, ''UTC'').';
        END LOOP;
    END IF;
END $$;
-- Since 1.1 a rule has a kind (docs/rules.md):
--   age:       column_name < now() - keep_for (epoch_unit says how a number counts time);
--   condition: the rule's condition alone; column_name is the indexed column its batches walk;
--   orphan:    the parent_table row whose parent_key equals child_key (column_name when NULL)
--              no longer exists; column_name is the indexed column its batches walk.
-- Any kind may add a condition (validated and stored deparsed by pgsweep.checked_condition).
ALTER TABLE pgsweep.expiry_rule
    ADD COLUMN IF NOT EXISTS epoch_unit   text,
    ADD COLUMN IF NOT EXISTS kind         text NOT NULL DEFAULT 'age',
    ADD COLUMN IF NOT EXISTS condition    text,
    ADD COLUMN IF NOT EXISTS parent_table regclass,
    ADD COLUMN IF NOT EXISTS parent_key   name,
    ADD COLUMN IF NOT EXISTS child_key    text,
    ADD COLUMN IF NOT EXISTS archive_to   regclass;
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'pgsweep.expiry_rule'::regclass
                                               AND conname = 'kind_known') THEN
        ALTER TABLE pgsweep.expiry_rule
            ADD CONSTRAINT epoch_unit_known CHECK (epoch_unit IN ('seconds', 'milliseconds')),
            ADD CONSTRAINT kind_known CHECK (kind IN ('age', 'condition', 'orphan')),
            ADD CONSTRAINT condition_rule_has_condition
                CHECK (kind <> 'condition' OR condition IS NOT NULL),
            ADD CONSTRAINT orphan_rule_has_parent
                CHECK ((kind = 'orphan') = (parent_table IS NOT NULL AND parent_key IS NOT NULL));
    END IF;
END $$;
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';
COMMENT ON COLUMN pgsweep.expiry_rule.value_zone IS
    'The time zone the values of a timestamp or date column are in (NULL for other types)';
-- 1.1: the expiry lag a rule may reach before verify and health go red (NULL: the default,
-- pgsweep.default_lag_target()).
ALTER TABLE pgsweep.expiry_rule ADD COLUMN IF NOT EXISTS lag_target interval;
COMMENT ON COLUMN pgsweep.expiry_rule.lag_target IS
    'Largest acceptable expiry lag (age past the cutoff of the oldest garbage row); NULL: the default';
COMMENT ON COLUMN pgsweep.expiry_rule.epoch_unit IS
    'How a numeric column counts epoch time: seconds (NULL: seconds) or milliseconds';
COMMENT ON COLUMN pgsweep.expiry_rule.kind IS
    'age (column < now() - keep_for), condition (the condition alone) or orphan (parent gone)';
COMMENT ON COLUMN pgsweep.expiry_rule.condition IS
    'An SQL condition on the table''s own columns that a row must also meet (validated, deparsed)';
COMMENT ON COLUMN pgsweep.expiry_rule.parent_table IS 'Orphan rules: the table the parent rows are in';
COMMENT ON COLUMN pgsweep.expiry_rule.parent_key IS 'Orphan rules: the parent''s key column';
COMMENT ON COLUMN pgsweep.expiry_rule.child_key IS
    'Orphan rules: the expression of the child''s columns that gives the parent key (NULL: column_name)';
COMMENT ON COLUMN pgsweep.expiry_rule.archive_to IS
    'The table the rule''s rows move into as they are deleted (NULL: deleted only)';
-- 1.1: where a partitioned table's partitions past the cutoff go instead of being dropped
-- (pgsweep.set_partition_archive). Appended, so an upgraded 1.0 has the columns in this order.
ALTER TABLE pgsweep.expiry_rule ADD COLUMN IF NOT EXISTS partition_archive_schema name;
COMMENT ON COLUMN pgsweep.expiry_rule.partition_archive_schema IS
    'Schema that partitions entirely past the cutoff are moved into as plain tables (NULL: dropped)';
-- 1.2: the type the rule's column had when the rule was registered (pgsweep.save_rule). A value
-- means what that type says (an instant, a wall-clock time in value_zone, an epoch number): a
-- column retyped since (ALTER TABLE ... ALTER COLUMN ... TYPE) holds values the rule was never
-- told how to read, so the rule reports a problem (pgsweep.rule_problem) until registered again.
-- Rules of an upgraded engine are taken to be registered for the type their column has now.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'pgsweep.expiry_rule'::regclass
                                              AND attname = 'registered_type' AND NOT attisdropped) THEN
        ALTER TABLE pgsweep.expiry_rule ADD COLUMN registered_type regtype;
        UPDATE pgsweep.expiry_rule r SET registered_type = a.atttypid
          FROM pg_attribute a
         WHERE a.attrelid = r.table_name AND a.attname = r.column_name
           AND a.attnum > 0 AND NOT a.attisdropped;
    END IF;
END $$;
COMMENT ON COLUMN pgsweep.expiry_rule.registered_type IS
    'The type column_name had when the rule was registered; a rule whose column has another type now cannot run';
-- 1.2: when the rule was first registered (re-registering keeps it). A condition or orphan rule
-- has no instant to age its garbage by: its expiry lag counts from the last time a finished
-- run left it clean, or from here when none has (pgsweep.rule_status). Rules of an older
-- engine count from the upgrade.
ALTER TABLE pgsweep.expiry_rule
    ADD COLUMN IF NOT EXISTS registered_at timestamptz NOT NULL DEFAULT now();
COMMENT ON COLUMN pgsweep.expiry_rule.registered_at IS
    'When the rule was first registered (kept when it is registered again)';

-- ---- tables/idle_run.sql ----------------------------------------
-- Runs inside one transaction (sweep_table, the cleanup functions over it) that deleted,
-- archived and failed nothing: one short insert-only row each instead of a run and its rules,
-- so that the app's frequent calls cost one insert (docs/observability.md). The rules it swept
-- are the parallel arrays; run_id is the one run_begin drew (no pgsweep.run row has it).
-- run_housekeeping folds the rows into pgsweep.rule_counter (runs_total, last_success_at), all
-- but each rule's newest, which pgsweep.rule_last_run shows as the rule's last run when it is;
-- pgsweep.rule_counters adds the rows not folded yet.
CREATE TABLE IF NOT EXISTS pgsweep.idle_run (
    run_id       bigint      NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    invoked_by   text        NOT NULL,
    role_name    name        NOT NULL DEFAULT session_user,
    table_names  text[]      NOT NULL,
    column_names name[]      NOT NULL,
    batches      bigint[]    NOT NULL
);
COMMENT ON TABLE pgsweep.idle_run IS
    'Function runs that deleted nothing, not yet folded into pgsweep.rule_counter';

-- ---- tables/partition_detach.sql ----------------------------------------
-- The partitions a cleanup is detaching with DETACH PARTITION ... CONCURRENTLY, each recorded
-- (and committed) before the detach starts and forgotten in the transaction that drops, moves
-- or attaches it again: what the next run repairs should the sweeping session end in between
-- (a partition half-detached, or detached and a table of its own). A pending detach not
-- recorded here is another session's (an app migration's) and pgsweep leaves it alone.
-- partition is the schema-qualified name at the detach (a standalone table has no other link
-- to its parent); bound is pg_get_expr(relpartbound) in UTC and ISO dates, as ATTACH PARTITION
-- takes it back; checks are the CHECK constraints the partition had before the detach.
CREATE TABLE IF NOT EXISTS pgsweep.partition_detach (
    partition    text        PRIMARY KEY,
    parent       regclass    NOT NULL,
    bound        text        NOT NULL,
    checks       text[]      NOT NULL DEFAULT '{}',
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    role_name    name        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE pgsweep.partition_detach IS
    'Concurrent partition detaches a cleanup started and has not finished (dropped or attached again)';

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

-- ---- tables/rule_counter.sql ----------------------------------------
-- The totals per rule of the runs pruned from the history, never pruned itself: the view
-- pgsweep.rule_counters adds the history still kept, so what a Prometheus counter reads only
-- ever grows. Written only when runs are pruned (run_housekeeping, in the transaction that
-- deletes them), never by a running cleanup: two runs at once never wait on each other for it.
CREATE TABLE IF NOT EXISTS pgsweep.rule_counter (
    table_name          text        NOT NULL,
    column_name         name        NOT NULL,
    rows_deleted_total  bigint      NOT NULL DEFAULT 0,
    rows_archived_total bigint      NOT NULL DEFAULT 0,
    runs_total          bigint      NOT NULL DEFAULT 0,
    failures_total      bigint      NOT NULL DEFAULT 0,
    last_success_at     timestamptz,
    PRIMARY KEY (table_name, column_name)
);
COMMENT ON TABLE pgsweep.rule_counter IS
    'Per rule totals of the runs pruned from the history (pgsweep.rule_counters adds the rest)';

-- ---- tables/rule_dependent.sql ----------------------------------------
-- 1.2: what a rule's delete does to the rows that reference its garbage through a foreign key
-- the database does not act on (an ORM's NO ACTION key, often DEFERRABLE INITIALLY DEFERRED,
-- whose CASCADE or SET NULL the ORM does in the app). One row per (rule, foreign key):
--   delete:   the referencing rows are deleted in the same statement as the garbage;
--   set null: their referencing columns are set NULL in the same statement;
--   keep:     garbage a referencing row points to is not garbage (rule_condition leaves it).
-- The key is named by its table and its name, which survive a dump and restore (an oid would
-- not). It references the rule's table, or (one level further) the table of one of the
-- rule's 'delete' dependents. pgsweep.set_dependent validates and writes it.
CREATE TABLE IF NOT EXISTS pgsweep.rule_dependent (
    table_name        regclass NOT NULL,
    column_name       name     NOT NULL,
    referencing_table regclass NOT NULL,
    constraint_name   name     NOT NULL,
    action            text     NOT NULL,
    PRIMARY KEY (table_name, column_name, referencing_table, constraint_name),
    CONSTRAINT rule_dependent_rule FOREIGN KEY (table_name, column_name)
        REFERENCES pgsweep.expiry_rule (table_name, column_name) ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT dependent_action_known CHECK (action IN ('delete', 'set null', 'keep'))
);
COMMENT ON TABLE pgsweep.rule_dependent IS
    'Per rule and referencing foreign key: delete, set null or keep the rows referencing its garbage';

-- ---- tables/run.sql ----------------------------------------
-- One row per cleanup run (docs/observability.md): when, who, how it was invoked, how it ended,
-- and what it did in total. CALL pgsweep.sweep() and the command's client-driven batches commit
-- the row at the start ('running') and update it batch by batch, so a run that was killed stays
-- 'running' until pgsweep.run_housekeeping (from the next run_begin) sees that its session is
-- gone and marks it 'interrupted'. A run cut by its time budget (pgsweep.max_run_time) ends
-- 'stopped': neither a failure nor a full success. sweep_table() and the cleanup functions
-- record in the caller's transaction: a run whose transaction rolls back leaves no row, as it
-- deletes nothing; one that deleted nothing writes only a row of pgsweep.idle_run.
-- The insert trigger's sweeps are counted in aggregate: one 'trigger' run per day.
-- Kept for pgsweep.history_retention() (30 days), pruned by run_housekeeping.
CREATE TABLE IF NOT EXISTS pgsweep.run (
    run_id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at       timestamptz,
    invoked_by     text        NOT NULL,
    role_name      name        NOT NULL DEFAULT session_user,
    status         text        NOT NULL DEFAULT 'running',
    error          text,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    rows_archived  bigint      NOT NULL DEFAULT 0,
    batches        bigint      NOT NULL DEFAULT 0,
    rows_given_way bigint,
    pauses         bigint      NOT NULL DEFAULT 0,
    paused_for     interval    NOT NULL DEFAULT '0',
    pid            bigint,
    backend_start  timestamptz,
    CONSTRAINT run_invoked_by_known
        CHECK (invoked_by IN ('procedure', 'function', 'cli', 'scheduler', 'trigger')),
    CONSTRAINT run_status_known
        CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'stopped'))
);
-- 1.1's constraint had no 'stopped' (a run cut by pgsweep.max_run_time); replaced on upgrade
-- with the very expression above, so a fresh and an upgraded engine have one catalog.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint c
                    WHERE c.conrelid = 'pgsweep.run'::regclass AND c.conname = 'run_status_known'
                      AND pg_get_constraintdef(c.oid) LIKE '%stopped%') THEN
        ALTER TABLE pgsweep.run DROP CONSTRAINT IF EXISTS run_status_known;
        ALTER TABLE pgsweep.run ADD CONSTRAINT run_status_known
            CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'stopped'));
    END IF;
END $$;
-- Created with the table, empty: nothing to wait for (and CONCURRENTLY cannot run in the
-- install's transaction).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS run_started_at_idx ON pgsweep.run (started_at);
-- The same: created with the table, empty.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS run_running_idx ON pgsweep.run (run_id) WHERE status = 'running';
COMMENT ON TABLE pgsweep.run IS
    'Cleanup runs (procedure, function, cli, scheduler; trigger sweeps one row a day), kept 30 days';
COMMENT ON COLUMN pgsweep.run.rows_given_way IS
    'Rows left because another transaction held them: NULL, not measured by this release';
COMMENT ON COLUMN pgsweep.run.pid IS
    'The backend that ran it (with backend_start: a ''running'' run whose backend is gone was interrupted)';

-- ---- tables/run_rule.sql ----------------------------------------
-- What one run did to one rule. table_name is text, not regclass, so the history of a table
-- outlives the table (and reads the same after a dump and restore).
CREATE TABLE IF NOT EXISTS pgsweep.run_rule (
    run_id         bigint      NOT NULL REFERENCES pgsweep.run ON DELETE CASCADE,
    table_name     text        NOT NULL,
    column_name    name        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at       timestamptz,
    rows_deleted   bigint      NOT NULL DEFAULT 0,
    rows_archived  bigint      NOT NULL DEFAULT 0,
    batches        bigint      NOT NULL DEFAULT 0,
    rows_given_way bigint,
    pauses         bigint      NOT NULL DEFAULT 0,
    paused_for     interval    NOT NULL DEFAULT '0',
    error          text,
    PRIMARY KEY (run_id, table_name, column_name)
);
-- Created with the table, empty (see run.sql).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS run_rule_rule_idx
    ON pgsweep.run_rule (table_name, column_name, started_at);
COMMENT ON TABLE pgsweep.run_rule IS
    'What each run did to each rule (table_name as text: history outlives a dropped table)';

-- ---- tables/trigger_sweep.sql ----------------------------------------
-- The insert trigger's sweeps that deleted rows, one short row each (never one per insert: a
-- sweep runs at most once per skip countdown and only a sweep that deleted writes). Insert-only,
-- so inserting sessions never wait on each other for it; pgsweep.run_begin folds the rows into
-- one 'trigger' run per day and the rule's counters, and empties this table.
CREATE TABLE IF NOT EXISTS pgsweep.trigger_sweep (
    table_name   text        NOT NULL,
    column_name  name        NOT NULL,
    swept_at     timestamptz NOT NULL DEFAULT now(),
    rows_deleted bigint      NOT NULL
);
COMMENT ON TABLE pgsweep.trigger_sweep IS
    'Insert-trigger sweeps not yet folded into pgsweep.run (per day) and pgsweep.rule_counter';

-- ---- functions/add_condition_rule.sql ----------------------------------------
-- A rule that is a condition alone: a row is garbage once p_condition holds for it
-- (used_at IS NOT NULL; coalesce(last_login_at, created_at) < now() - interval '6 months').
-- p_column names the column its batches walk in index order (it keys the rule, with the
-- table, in history and status): an index must lead with it, and some index must serve the
-- condition itself (an index on a column it tests, an expression index, a partial index), else
-- the rule is refused, naming the index to build.
CREATE OR REPLACE FUNCTION pgsweep.add_condition_rule(
    p_table regclass, p_column name, p_condition text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
BEGIN
    PERFORM pgsweep.column_type(p_table, p_column);
    IF p_condition IS NULL THEN
        RAISE EXCEPTION 'a condition rule needs a condition'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Field by field: the columns not named here (lag_target, …) stay NULL.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := '0';
    v_rule.kind := 'condition';
    v_rule.condition := pgsweep.checked_condition(p_table, p_condition);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    IF pgsweep.unindexed_statement(format('SELECT FROM %s WHERE %s', p_table, v_rule.condition)) THEN
        RAISE EXCEPTION 'no valid index of % serves the condition %', p_table, v_rule.condition
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Build one the condition can use, e.g. CREATE INDEX CONCURRENTLY'
                                ' ON %s ((%s)); or an index on the column or expression it'
                                ' compares with now().', p_table, v_rule.condition);
    END IF;
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_condition_rule(regclass, name, text) IS
    'Register (or update) a rule whose garbage is the rows meeting a condition';

-- ---- functions/add_orphan_rule.sql ----------------------------------------
-- A rule for orphans: a row of p_table is garbage once no row of p_parent has p_parent_key
-- equal to p_child_key, an expression of the row's columns (p_column itself when NULL; e.g.
-- nullif(split_part(key, ':', 2), '')::bigint for an id inside a cache key). A row whose key
-- is NULL has no parent to lose and is kept. p_column is the column the batches walk in index
-- order; the parent key needs an index leading with it, so each child is one index probe;
-- p_condition optionally narrows the rule (key LIKE 'user:%'). A key expression must never
-- fail on a value (a cast of non-digits would stop every sweep): narrow it or use nullif.
-- Deleting is safe against a parent being inserted concurrently: see pgsweep.hold_parents.
CREATE OR REPLACE FUNCTION pgsweep.add_orphan_rule(
    p_table regclass, p_column name, p_parent regclass, p_parent_key name,
    p_child_key text DEFAULT NULL, p_condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
    v_key  text;
BEGIN
    PERFORM pgsweep.column_type(p_table, p_column);
    PERFORM pgsweep.column_type(p_parent, p_parent_key);
    IF NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = p_parent AND c.relkind IN ('r', 'p')) THEN
        RAISE EXCEPTION '% is not a table', p_parent USING ERRCODE = 'wrong_object_type';
    END IF;
    -- The key expression is checked as the condition "(key) IS NOT NULL", whose deparsed form
    -- is always "(<key> IS NOT NULL)": the key is what lies between.
    IF p_child_key IS NOT NULL THEN
        v_key := pgsweep.checked_condition(p_table, format('(%s) IS NOT NULL', p_child_key));
        IF v_key NOT LIKE '(% IS NOT NULL)' THEN
            RAISE EXCEPTION 'the parent key expression % is not one expression', p_child_key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_key := substr(v_key, 2, length(v_key) - length('( IS NOT NULL)'));
    END IF;
    -- Field by field: the columns not named here (lag_target, …) stay NULL.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := '0';
    v_rule.kind := 'orphan';
    v_rule.condition := pgsweep.checked_condition(p_table, p_condition);
    v_rule.parent_table := p_parent;
    v_rule.parent_key := p_parent_key;
    v_rule.child_key := v_key;
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    PERFORM pgsweep.require_leading_index(p_parent, p_parent_key);
    -- The comparison must resolve (types that compare) before the rule is kept.
    EXECUTE format('SELECT FROM %s WHERE %s LIMIT 0', p_table, pgsweep.rule_condition(v_rule));
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_orphan_rule(regclass, name, regclass, name, text, text) IS
    'Register (or update) a rule whose garbage is the rows whose parent row is gone';

-- ---- functions/add_rule.sql ----------------------------------------
-- Bring a table under the lifecycle: checks the column's type, that an index leads with the
-- column (so every purge is index-driven) and, for a timestamp or date column, the zone its
-- values are in (UTC for a new rule; an update without a zone keeps the rule's); for a numeric
-- column, the unit of its epoch values (seconds for a new rule; an update without one keeps the
-- rule's), refused when most of the values already there are implausible in that unit
-- (pgsweep.epoch_unit_problem); an optional condition on the table's own columns that a row
-- must also meet (pgsweep.checked_condition). Then records (or updates) the rule. A
-- timestamptz or numeric column carries no zone, and a non-numeric one no unit, so giving one
-- is an error rather than a setting that does nothing.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_value_zone text DEFAULT NULL,
    p_epoch_unit text DEFAULT NULL, p_condition text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_table, p_column);
    v_old  pgsweep.expiry_rule;
    v_zone text;
    v_unit text;
    v_rule pgsweep.expiry_rule;
    v_problem text;
BEGIN
    SELECT r.* INTO v_old FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        -- Updating a rule without naming a zone keeps the zone it has.
        v_zone := coalesce(p_value_zone, v_old.value_zone, 'UTC');
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
    IF v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                  'numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
        v_unit := coalesce(p_epoch_unit, v_old.epoch_unit, 'seconds');
        IF v_unit NOT IN ('seconds', 'milliseconds') THEN
            RAISE EXCEPTION 'unknown epoch unit "%"', v_unit
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Say seconds or milliseconds.';
        END IF;
    ELSIF p_epoch_unit IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % has type %, which holds no epoch number to give a unit',
            p_column, p_table, v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'epoch_unit is for numeric columns (epoch seconds or milliseconds).';
    END IF;
    -- Field by field: the columns not named here (lag_target, …) stay NULL.
    v_rule.table_name := p_table;
    v_rule.column_name := p_column;
    v_rule.keep_for := coalesce(p_keep_for, '0');
    v_rule.value_zone := v_zone;
    v_rule.epoch_unit := v_unit;
    v_rule.kind := 'age';
    v_rule.condition := pgsweep.checked_condition(p_table, p_condition);
    PERFORM pgsweep.cutoff_literal(v_rule);
    PERFORM pgsweep.require_leading_index(p_table, p_column);
    v_problem := pgsweep.epoch_unit_problem(v_rule);
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of % does not look like epoch %: %', p_column, p_table,
            v_unit, v_problem
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Declare the unit its values are in: pgsweep.add_rule(%L, %L, %L, '
                                'p_epoch_unit => %L).', p_table, p_column, v_rule.keep_for,
                                CASE v_unit WHEN 'seconds' THEN 'milliseconds' ELSE 'seconds' END);
    END IF;
    PERFORM pgsweep.save_rule(v_rule);
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval, text, text, text) IS
    'Register (or update) an age rule after checking its column type, index, zone, unit and condition';

-- ---- functions/analyze_share.sql ----------------------------------------
-- A run that deleted at least this share of a table's rows (pg_class.reltuples before the run)
-- ANALYZEs it at its end (run_end, with the caller's rights): 0.1, unless the setting
-- pgsweep.analyze_share says otherwise. Kept within (0, 1]: a share of 0 or less would analyze
-- every table a run touched, one above 1 none; such a value means the default.
CREATE OR REPLACE FUNCTION pgsweep.analyze_share()
RETURNS double precision
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN s.share > 0 AND s.share <= 1 THEN s.share ELSE 0.1 END
      FROM (SELECT nullif(current_setting('pgsweep.analyze_share', true), '')::double precision
                       AS share) s
$$;
COMMENT ON FUNCTION pgsweep.analyze_share() IS
    'Share of a table a run must delete to ANALYZE it (setting pgsweep.analyze_share within (0, 1], default 0.1)';

-- ---- functions/analyze_swept.sql ----------------------------------------
-- ANALYZE the tables a closed run deleted a large share of (pgsweep.run_close's answer), so the
-- planner stops costing rows that are gone. SECURITY INVOKER on purpose: with the caller's
-- rights (a table the caller may not analyze is skipped with ANALYZE's own warning), never
-- with the engine owner's. Called once the run's status is committed (CALL pgsweep.sweep()
-- commits it first), so a cancel during an ANALYZE leaves no run open. A table whose lock is
-- not granted within 100 ms (a VACUUM or an index build holds it) is left to autovacuum, so
-- that a caller holding the table's lock never makes the app wait on it.
CREATE OR REPLACE FUNCTION pgsweep.analyze_swept(p_tables regclass[], p_rows numeric[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(p_tables), 0) LOOP
        RAISE NOTICE 'pgsweep: % rows deleted from %: analyzing it', p_rows[i], p_tables[i];
        BEGIN
            EXECUTE format('ANALYZE %s', p_tables[i]);
        EXCEPTION WHEN lock_not_available THEN
            RAISE NOTICE 'pgsweep: % not analyzed: its lock was not granted at once', p_tables[i]
                USING HINT = 'Autovacuum analyzes it, or run ANALYZE yourself.';
        END;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.analyze_swept(regclass[], numeric[]) IS
    'ANALYZE, with the caller''s rights, the tables a closed run deleted a large share of';

-- ---- functions/archiving_statement.sql ----------------------------------------
-- A purge's DELETE (p_delete, built by purge_statement or skip_locked_statement), made whole
-- for the rule, in one statement, so that nothing is lost, duplicated or left dangling between
-- the parts (a rolled-back batch undoes all of them):
--   its dependents (pgsweep.rule_dependent): the rows referencing a row deleted are deleted
--     ('delete') or have their referencing columns set NULL ('set null'), one data-modifying
--     CTE each reading the deleted rows' keys (RETURNING, so only rows really deleted count,
--     never rows the condition matched but a concurrent update saved); one level further, the
--     rows referencing a dependent deleted, the same way;
--   its archive: each row deleted is inserted into archive_to with every column of the table,
--     archived_at (now()) and archived_by (the rule, "table.column"), so nothing is archived
--     that was not deleted.
-- The foreign keys are checked at the end of the statement (or, deferred, when hold_parents
-- made them IMMEDIATE), after every part has run. ROW_COUNT is the rows deleted from the
-- rule's table: the rows archived, or the rows the final SELECT reads from gone. With no
-- archive and no dependent to act on, p_delete itself.
CREATE OR REPLACE FUNCTION pgsweep.archiving_statement(p_rule pgsweep.expiry_rule, p_delete text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dependent record;
    v_returning text;
    v_columns   text;
    v_parts     text[] := '{}'::text[];
    v_source    text;
BEGIN
    -- Most rules neither archive nor have a dependent to act on: answered from the rule's own
    -- rows, without rule_dependents' look-up of each key (a dependent whose key is gone still
    -- takes the test below).
    IF p_rule.archive_to IS NULL
       AND NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                        WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name
                          AND d.action IN ('delete', 'set null')) THEN
        RETURN p_delete;
    END IF;
    IF p_rule.archive_to IS NULL
       AND NOT EXISTS (SELECT FROM pgsweep.rule_dependents(p_rule) d
                        WHERE d.action IN ('delete', 'set null')) THEN
        RETURN p_delete;
    END IF;
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_columns
      FROM pg_attribute a
     WHERE a.attrelid = p_rule.table_name AND a.attnum > 0 AND NOT a.attisdropped;
    IF p_rule.archive_to IS NOT NULL THEN
        v_returning := v_columns;
    ELSE
        SELECT string_agg(DISTINCT format('%I', c), ', ') INTO v_returning
          FROM pgsweep.rule_dependents(p_rule) d, unnest(d.referenced_columns) c
         WHERE d.referenced_table = p_rule.table_name AND d.action IN ('delete', 'set null');
    END IF;
    -- Each dependent's CTE is pgsweep_dependent_<n>, n its place in rule_dependents (nearest
    -- level first), so a CTE one level further names only earlier ones.
    FOR v_dependent IN
        SELECT d.* FROM pgsweep.rule_dependents(p_rule) WITH ORDINALITY d
         WHERE d.action IN ('delete', 'set null') ORDER BY d.ordinality
    LOOP
        IF v_dependent.referenced_table = p_rule.table_name THEN
            v_source := format('SELECT %s FROM gone', pgsweep.quoted_names(v_dependent.referenced_columns));
        ELSE
            -- One level further: the keys of the rows that table's 'delete' dependents deleted.
            SELECT string_agg(format('SELECT %s FROM pgsweep_dependent_%s',
                                     pgsweep.quoted_names(v_dependent.referenced_columns), e.ordinality),
                              ' UNION ALL ')
              INTO v_source
              FROM pgsweep.rule_dependents(p_rule) WITH ORDINALITY e
             WHERE e.referencing_table = v_dependent.referenced_table AND e.action = 'delete'
               AND e.referenced_table = p_rule.table_name;
            IF v_source IS NULL THEN
                CONTINUE;   -- nothing deletes from its table: nothing of it to act on
            END IF;
        END IF;
        IF v_dependent.action = 'delete' THEN
            v_parts := v_parts || format(
                'pgsweep_dependent_%s AS (DELETE FROM %s WHERE (%s) IN (%s)%s)',
                v_dependent.ordinality, v_dependent.referencing_table,
                pgsweep.quoted_names(v_dependent.referencing_columns), v_source,
                coalesce(' RETURNING ' || (
                    SELECT string_agg(DISTINCT format('%I', c), ', ')
                      FROM pgsweep.rule_dependents(p_rule) f, unnest(f.referenced_columns) c
                     WHERE f.referenced_table = v_dependent.referencing_table
                       AND f.action IN ('delete', 'set null')), ''));
        ELSE
            v_parts := v_parts || format(
                'pgsweep_dependent_%s AS (UPDATE %s SET %s WHERE (%s) IN (%s))',
                v_dependent.ordinality, v_dependent.referencing_table,
                array_to_string(ARRAY(SELECT format('%I = NULL', c)
                                        FROM unnest(v_dependent.referencing_columns) c), ', '),
                pgsweep.quoted_names(v_dependent.referencing_columns), v_source);
        END IF;
    END LOOP;
    RETURN format('WITH gone AS (%s RETURNING %s)', p_delete, v_returning)
        || CASE WHEN cardinality(v_parts) > 0 THEN ', ' || array_to_string(v_parts, ', ') ELSE '' END
        || CASE WHEN p_rule.archive_to IS NOT NULL THEN
               format(' INSERT INTO %s (%s, archived_at, archived_by) SELECT %s, now(), %L FROM gone',
                      p_rule.archive_to, v_columns, v_columns,
                      format('%s.%s', p_rule.table_name, p_rule.column_name))
           ELSE ' SELECT FROM gone' END;
END $$;
COMMENT ON FUNCTION pgsweep.archiving_statement(pgsweep.expiry_rule, text) IS
    'A purge''s DELETE, with its dependents'' deletes or updates and its archive''s insert, in one statement';

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

-- ---- functions/checked_condition.sql ----------------------------------------
-- A rule's condition, checked and returned in the form the engine stores and runs: deparsed by
-- the server from its parse tree (one expression, columns unqualified, every function and type
-- outside pg_catalog schema-qualified). Refused unless provably safe to re-evaluate at delete
-- time, with the rights of whoever runs the sweep:
--   * it parses as a CHECK constraint on a copy of the table's columns: one boolean expression
--     over those columns only, no subquery, aggregate or window function;
--   * every function it calls (operators' functions included) is a pg_catalog function marked
--     immutable or stable; every operator is pg_catalog's;
--   * every type it names or reads (constants, casts, columns) is pg_catalog's or an enum, so
--     no user-written input, output or domain-check function runs;
--   * no whole-row reference, no row comparison, no ";".
-- The copy is a temporary table dropped before returning; the condition text is parsed with
-- the caller's rights (this function is not SECURITY DEFINER).
CREATE OR REPLACE FUNCTION pgsweep.checked_condition(p_table regclass, p_condition text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_copy text := format('pgsweep_condition_%s', p_table::oid);
    v_tree text;
    v_expr text;
    v_bad  text;
    v_styles text[] := ARRAY[current_setting('datestyle'), current_setting('intervalstyle'),
                             current_setting('timezone')];
BEGIN
    IF p_condition IS NULL THEN
        RETURN NULL;
    END IF;
    IF strpos(p_condition, ';') > 0 THEN
        RAISE EXCEPTION 'a rule''s condition is one SQL expression and may not contain ";"'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'In a string literal, write chr(59) for ";".';
    END IF;
    /* The table is regclass output, the copy's name quoted with %I; the condition is parsed
     * here on purpose, with the caller's rights, and only its deparsed form is kept.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('CREATE TEMP TABLE %I (LIKE %s)', v_copy, p_table);
    BEGIN
        EXECUTE format('ALTER TABLE pg_temp.%I ADD CONSTRAINT rule_condition CHECK (%s)',
                       v_copy, p_condition);
        -- Parsed above in the caller's DateStyle, IntervalStyle and TimeZone (what the caller
        -- meant by '05/01/2026'); written back in ISO 8601, postgres intervals and explicit UTC
        -- offsets, which every session reads back as the same values whatever its own styles.
        -- (Only for this statement: the caller's styles are put back at once.)
        PERFORM set_config('datestyle', 'ISO, YMD', true), set_config('intervalstyle', 'postgres', true),
                set_config('timezone', 'UTC', true);
        SELECT c.conbin::text, pg_get_expr(c.conbin, c.conrelid) INTO STRICT v_tree, v_expr
          FROM pg_constraint c
         WHERE c.conrelid = format('pg_temp.%I', v_copy)::regclass;
        PERFORM set_config('datestyle', v_styles[1], true), set_config('intervalstyle', v_styles[2], true),
                set_config('timezone', v_styles[3], true);
    EXCEPTION WHEN OTHERS THEN
        EXECUTE format('DROP TABLE pg_temp.%I', v_copy);
        RAISE EXCEPTION 'condition of a rule on %: %', p_table, SQLERRM
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A condition is one boolean expression over the table''s own columns,'
                         ' e.g. status = ''suspended'' or used_at IS NOT NULL.';
    END;
    EXECUTE format('DROP TABLE pg_temp.%I', v_copy);
    v_bad := substring(v_tree FROM '\{(SUBLINK|AGGREF|WINDOWFUNC|PARAM|NEXTVALUEEXPR|ROWCOMPAREEXPR'
                                   '|COERCETODOMAIN|CURRENTOFEXPR|GROUPINGFUNC)');
    IF v_bad IS NOT NULL OR v_tree ~ ':varattno 0 ' THEN
        RAISE EXCEPTION 'condition of a rule on % uses what a rule may not: %', p_table,
            coalesce(lower(v_bad), 'a whole-row reference')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Stable is not enough: table_to_xml and its siblings are stable pg_catalog functions that
    -- run a query on any relation (a view's functions included) with the sweeping role's
    -- rights; they, and anything else that runs SQL it is handed, are refused by name.
    SELECT string_agg(DISTINCT format('%s (%s)', p.oid::regprocedure,
                                      CASE WHEN p.pronamespace <> 'pg_catalog'::regnamespace
                                           THEN 'not a pg_catalog function'
                                           WHEN p.provolatile = 'v' THEN 'volatile'
                                           ELSE 'it runs a query' END),
                      ', ')
      INTO v_bad
      FROM (SELECT m[1]::oid AS f
              FROM regexp_matches(v_tree, ':(?:funcid|opfuncid|hashfuncid|negfuncid) (\d+)', 'g') m
            UNION
            SELECT o.oprcode::oid FROM regexp_matches(v_tree, ':opno (\d+)', 'g') m
              JOIN pg_operator o ON o.oid = m[1]::oid) used
      JOIN pg_proc p ON p.oid = used.f
     WHERE p.pronamespace <> 'pg_catalog'::regnamespace OR p.provolatile = 'v' OR p.prokind <> 'f'
        OR p.proname ~ '^(table|schema|database|query|cursor)_to_xml';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % calls functions a sweep may not run: %',
            p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Only immutable or stable pg_catalog functions and operators are allowed.';
    END IF;
    SELECT string_agg(DISTINCT o.oid::regoperator::text, ', ') INTO v_bad
      FROM regexp_matches(v_tree, ':opno (\d+)', 'g') m
      JOIN pg_operator o ON o.oid = m[1]::oid
     WHERE o.oprnamespace <> 'pg_catalog'::regnamespace;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % uses operators outside pg_catalog: %',
            p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(DISTINCT t.oid::regtype::text, ', ') INTO v_bad
      FROM regexp_matches(v_tree, ':[a-z_]*(?:type|typeid) (\d+)', 'g') m
      JOIN pg_type t ON t.oid = m[1]::oid
     WHERE t.typnamespace <> 'pg_catalog'::regnamespace AND t.typtype <> 'e';
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of a rule on % uses types outside pg_catalog: %', p_table, v_bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Their input, output or check functions would run with the sweep''s rights.';
    END IF;
    RETURN v_expr;
END $$;
COMMENT ON FUNCTION pgsweep.checked_condition(regclass, text) IS
    'A rule condition checked as safe to re-run (pg_catalog immutable/stable only), deparsed';

-- ---- functions/close_own_leftovers.sql ----------------------------------------
-- What a cancel (pg_cancel_backend, statement_timeout) that struck CALL pgsweep.sweep() outside
-- its exception handlers left to its own session: right after a COMMIT, or between a step and
-- the next (PostgreSQL forbids a handler around a COMMIT, so no procedure can catch those). Its
-- run is still 'running' and holds the run's advisory lock, and the rule it was on its rule's
-- lock, so other sessions skip that rule for as long as this session lives (a pooled
-- connection: days). run_begin calls this first, so the session's next run closes them: each
-- such run of this very session (its pid and backend_start) becomes 'interrupted' with the
-- reason, its lock released, and every rule lock this session still holds is released (no run
-- of its own is live at a run_begin of another statement: a session runs one run at a time, and
-- a call nested in a live run's statement finds that run's mark, pgsweep.open_run_mark, and
-- closes nothing). Returns the runs closed.
CREATE OR REPLACE FUNCTION pgsweep.close_own_leftovers()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_db     oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    v_run    record;
    v_lock   record;
    v_closed integer := 0;
BEGIN
    -- The session's open run is live in this very statement (a function call nested in its
    -- batch, through an app's trigger): nothing of this session is a leftover now.
    IF current_setting('pgsweep.open_run', true) LIKE '%@%'
       AND split_part(current_setting('pgsweep.open_run', true), '@', 2)
           = split_part(pgsweep.open_run_mark(0), '@', 2) THEN
        RETURN 0;
    END IF;
    PERFORM set_config('pgsweep.open_run', '', false);
    FOR v_run IN
        UPDATE pgsweep.run r
           SET status = 'interrupted',
               ended_at = coalesce((SELECT max(rr.ended_at) FROM pgsweep.run_rule rr
                                     WHERE rr.run_id = r.run_id), r.started_at),
               error = 'cut short in its session outside the engine''s handlers (a cancel or'
                       ' statement_timeout right after a commit); closed by the session''s next run'
         WHERE r.status = 'running' AND r.pid = pg_backend_pid()
           AND r.backend_start IS NOT DISTINCT FROM (SELECT a.backend_start FROM pg_stat_activity a
                                                      WHERE a.pid = pg_backend_pid())
        RETURNING r.run_id
    LOOP
        v_closed := v_closed + 1;
        WHILE pgsweep.run_alive(v_run.run_id, pg_backend_pid()) LOOP
            PERFORM pg_advisory_unlock(1886614391, (v_run.run_id % 2147483648)::integer);
        END LOOP;
    END LOOP;
    -- A session lock taken n times is held until n unlocks: one row in pg_locks all along.
    FOR v_lock IN
        SELECT k.classid, k.objid
          FROM pgsweep.expiry_rule e, pgsweep.rule_lock_keys(e.table_name, e.column_name) k
         WHERE EXISTS (SELECT FROM pg_locks l
                        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                          AND l.pid = pg_backend_pid() AND l.database = v_db
                          AND l.classid = k.classid::oid AND l.objid = k.objid::oid)
    LOOP
        LOOP
            PERFORM pg_advisory_unlock(v_lock.classid, v_lock.objid);
            EXIT WHEN NOT EXISTS (SELECT FROM pg_locks l
                                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                                     AND l.pid = pg_backend_pid() AND l.database = v_db
                                     AND l.classid = v_lock.classid::oid
                                     AND l.objid = v_lock.objid::oid);
        END LOOP;
    END LOOP;
    RETURN v_closed;
END $$;
COMMENT ON FUNCTION pgsweep.close_own_leftovers() IS
    'Close the runs this session left running and release the rule locks it still holds';

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

-- ---- functions/create_live_view.sql ----------------------------------------
-- A view of p_table without the rows its rules mark as garbage, so an app reading it never
-- serves an expired row even while the cleanup is behind (docs/rules.md). Named p_view, or
-- <schema>.<table>_live when NULL (pgsweep.live_view_name: a long name is cut and given a
-- hash of the table's name); created or replaced (run it again after changing the table's
-- rules: the view holds their conditions as they were), but never over a relation of that
-- name that is not a live view of p_table this function made. security_invoker: the reader's
-- own rights and row-level security apply, never the creator's. The cutoffs are expressions of
-- now() (rule_condition(..., p_as_of_now => true)), evaluated at each read. Returns the view.
-- p_view is a name as SQL writes it, [schema.]view (parse_ident: "My View" keeps its case and
-- space, my_view is folded to lower case; without a schema, the table's); anything else is
-- refused before any statement runs, and each part is quoted (%I) into the statements.
CREATE OR REPLACE FUNCTION pgsweep.create_live_view(p_table regclass, p_view text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name  text;
    v_marks text;
    v_parts text[];
    v_existing regclass;
BEGIN
    IF p_view IS NOT NULL THEN
        BEGIN
            v_parts := parse_ident(p_view);
        EXCEPTION WHEN invalid_parameter_value THEN
            v_parts := NULL;
        END;
        IF cardinality(v_parts) NOT BETWEEN 1 AND 2 OR v_parts IS NULL THEN
            RAISE EXCEPTION 'pgsweep: % is not a view name ([schema.]name)', quote_literal(p_view)
                USING ERRCODE = 'invalid_name',
                      HINT = 'Double-quote a name with spaces or capitals: "My view".';
        END IF;
    END IF;
    SELECT string_agg(format('(%s)', pgsweep.rule_condition(r, NULL, NULL, true)), ' OR '
                      ORDER BY r.column_name)
      INTO v_marks
      FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND pgsweep.rule_problem(r) IS NULL;
    IF v_marks IS NULL THEN
        RAISE EXCEPTION 'table % has no expiry rule that can run', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    -- A name without a schema goes in the table's (the pinned search_path would say pg_catalog).
    SELECT CASE cardinality(v_parts)
                WHEN 2 THEN format('%I.%I', v_parts[1], v_parts[2])
                WHEN 1 THEN format('%I.%I', n.nspname, v_parts[1])
                ELSE format('%I.%I', n.nspname, pgsweep.live_view_name(c.relname)) END INTO v_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    -- Replace only a live view of this table made here (its comment says so, and it reads the
    -- table): the app's own view of that name (one that reads the table with a filter of its
    -- own, say), another table's (two long names cut to the same 63 bytes, or a name given
    -- twice), or any other relation is refused, never silently replaced.
    SELECT v.oid INTO v_existing FROM pg_class v
     WHERE v.oid = to_regclass(v_name)
       AND NOT (v.relkind = 'v'
                AND coalesce(obj_description(v.oid, 'pg_class'), '') LIKE '% (pgsweep.create_live_view)'
                AND EXISTS (SELECT FROM pg_rewrite w
                              JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass
                                              AND d.objid = w.oid
                             WHERE w.ev_class = v.oid AND d.refclassid = 'pg_class'::regclass
                               AND d.refobjid = p_table));
    IF v_existing IS NOT NULL THEN
        RAISE EXCEPTION 'pgsweep: % already exists and is not a live view of % made by'
                        ' pgsweep.create_live_view', v_existing, p_table
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Name the view: SELECT pgsweep.create_live_view(table, ''schema.view'').';
    END IF;
    /* Every part is regclass output, %I-quoted (the view's name too, part by part) or built by
     * rule_condition from quoted parts.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('CREATE OR REPLACE VIEW %s WITH (security_invoker = true) AS'
                   ' SELECT * FROM %s WHERE (%s) IS NOT TRUE', v_name, p_table, v_marks);
    EXECUTE format('COMMENT ON VIEW %s IS %L', v_name,
                   format('The rows of %s no pgsweep rule marks as garbage (pgsweep.create_live_view)',
                          p_table));
    RETURN to_regclass(v_name);
END $$;
COMMENT ON FUNCTION pgsweep.create_live_view(regclass, text) IS
    'Create (or refresh) a view of a table without the rows its rules mark as garbage';

-- ---- functions/cutoff_expression.sql ----------------------------------------
-- The cutoff of an age rule as an SQL expression of now(), for what is evaluated later (the
-- views that hide expired rows: pgsweep.create_live_view): the same instant as cutoff_literal,
-- now() - keep_for reckoned in UTC, in the column's type, zone and epoch unit (a wall-clock
-- cutoff through pgsweep.wall_clock_cutoff, as cutoff_literal's). NULL for rules that are not
-- age rules.
CREATE OR REPLACE FUNCTION pgsweep.cutoff_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_instant text := format('((now() AT TIME ZONE ''UTC'') - %L::interval) AT TIME ZONE ''UTC''',
                             p_rule.keep_for);
    v_scale   integer := CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    v_largest numeric := CASE v_type WHEN 'smallint'::regtype THEN 32767
                                     WHEN 'integer'::regtype THEN 2147483647
                                     ELSE 9223372036854775807 END;
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    END IF;
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('(%s)', v_instant);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('pgsweep.wall_clock_cutoff(%s, %L)::%s', v_instant,
                          coalesce(p_rule.value_zone, 'UTC'), v_type);
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            -- Clamped to the type's range, as cutoff_literal's.
            RETURN format('greatest(least(ceil(extract(epoch FROM %s) * %s), %s), %s)::%s',
                          v_instant, v_scale, v_largest, -v_largest - 1, v_type);
        ELSE
            RETURN format('(extract(epoch FROM %s) * %s)::%s', v_instant, v_scale, v_type);
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_expression(pgsweep.expiry_rule) IS
    'now() - keep_for as an SQL expression of now() in the column''s type (for views)';

-- ---- functions/cutoff_literal.sql ----------------------------------------
-- The cutoff of a rule as an SQL literal of the column's own type, so the planner sees a
-- constant it can match against the column's index. Written with to_char in ISO 8601 with a
-- numeric offset and the era, which every DateStyle reads back as written (DateStyle's own
-- output may print zone abbreviations, which do not read back uniquely: 'IST' for Asia/Kolkata
-- reads back as Israel time), without setting DateStyle or TimeZone, which costs every call.
-- now() - keep_for is reckoned in UTC (a day is 24 hours, whatever daylight
-- saving the session's zone observes), and a timestamp or date column takes that instant in the
-- rule's value_zone (UTC when unset): neither the session's nor the server's TimeZone moves it.
-- Around a daylight-saving change a wall-clock value has two readings: the cutoff is the first
-- wall-clock time that may be live (pgsweep.wall_clock_cutoff), so a row goes only when every
-- reading of it is past; a date goes once its whole day is before that.
-- A number counts the rule's epoch_unit (seconds when unset). NULL for rules that are not age
-- rules (a condition or orphan rule has no cutoff).
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    -- timestamp minus interval is calendar arithmetic with no zone: UTC's.
    v_utc     timestamp := (now() AT TIME ZONE 'UTC') - p_rule.keep_for;
    v_instant timestamptz := v_utc AT TIME ZONE 'UTC';
    v_wall    timestamp;
    v_zone    text := coalesce(p_rule.value_zone, 'UTC');
    v_scale   integer := CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    v_largest numeric := CASE v_type WHEN 'smallint'::regtype THEN 32767
                                     WHEN 'integer'::regtype THEN 2147483647
                                     ELSE 9223372036854775807 END;
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    END IF;
    CASE
        WHEN v_type = 'timestamptz'::regtype THEN
            RETURN format('%L::%s', to_char(v_utc, 'YYYY-MM-DD HH24:MI:SS.US') || '+00 '
                                    || to_char(v_utc, 'AD'), v_type);
        WHEN v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
            v_wall := pgsweep.wall_clock_cutoff(v_instant, v_zone);
            RETURN format('%L::%s', to_char(v_wall, 'YYYY-MM-DD HH24:MI:SS.US ')
                                    || to_char(v_wall, 'AD'), v_type);
        -- Whole units: "ttl < 1000.5" is "ttl < 1001" for an integer ttl, hence ceil.
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            -- Clamped to the type's range (a smallint never reaches 2000 in seconds, an integer
            -- in milliseconds): no value is past the cutoff, and the literal must still cast.
            RETURN format('%s::%s', greatest(least(ceil(extract(epoch FROM v_instant) * v_scale),
                                                   v_largest), -v_largest - 1)::bigint, v_type);
        WHEN v_type IN ('numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
            RETURN format('%s::%s', extract(epoch FROM v_instant) * v_scale, v_type);
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which cannot expire',
                p_rule.column_name, p_rule.table_name, v_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a timestamp, date, or a number of epoch seconds or milliseconds.';
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_literal(pgsweep.expiry_rule) IS
    'now() - keep_for as a literal of the column''s type (numbers: in the rule''s epoch unit)';

-- ---- functions/default_lag_target.sql ----------------------------------------
-- The expiry lag a rule without its own lag_target may reach before verify and health go red:
-- 1 hour, unless the setting pgsweep.default_lag_target says otherwise.
CREATE OR REPLACE FUNCTION pgsweep.default_lag_target()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pgsweep.default_lag_target', true), '')::interval,
                    '1 hour')
$$;
COMMENT ON FUNCTION pgsweep.default_lag_target() IS
    'The lag target of a rule without its own (setting pgsweep.default_lag_target, default 1 hour)';

-- ---- functions/deferred_keys_possible.sql ----------------------------------------
-- Whether pgsweep.deferred_references can find anything for a rule, answered from pg_trigger's
-- index on the table (pg_constraint has none on the referenced table): false for the usual
-- case, a plain table that no deferrable key's action trigger is on (deferrable, not only
-- initially deferred: the app may defer one itself), with no 'delete'
-- dependent whose table would need looking at. A plain boolean, so that a caller skips the
-- set-returning call when it would return nothing.
CREATE OR REPLACE FUNCTION pgsweep.deferred_keys_possible(p_rule pgsweep.expiry_rule)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN NOT coalesce(
        (SELECT c.relkind = 'r' AND NOT EXISTS (
                    SELECT FROM pg_trigger t
                     WHERE t.tgrelid = c.oid AND t.tgconstraint <> 0 AND t.tgdeferrable)
           FROM pg_class c WHERE c.oid = p_rule.table_name)
        AND NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                         WHERE d.table_name = p_rule.table_name
                           AND d.column_name = p_rule.column_name AND d.action = 'delete'),
        false);
END $$;
COMMENT ON FUNCTION pgsweep.deferred_keys_possible(pgsweep.expiry_rule) IS
    'Whether a rule''s table or its ''delete'' dependents may have deferred keys (false: none)';

-- ---- functions/deferred_references.sql ----------------------------------------
-- The deferrable foreign keys (NO ACTION; INITIALLY DEFERRED is what Django creates) that no
-- dependent of the rule handles and that would check, at the caller's COMMIT, rows a delete of
-- the rule takes: keys onto its table (on_dependent false) or onto a table its 'delete'
-- dependents delete from (on_dependent true). Only NO ACTION can be deferred: every other
-- action is taken at once. In the caller's transaction (pgsweep.sweep_table and the functions
-- built on it) the engine may neither make them IMMEDIATE (the app's own pending checks would
-- fire early) nor leave them to fail the app's COMMIT: the garbage they reference stays
-- (purge_rule), and a rule whose dependents' tables have them is left to the batched sweep,
-- which checks them in its own transaction (sweep_step: SET CONSTRAINTS ALL IMMEDIATE).
CREATE OR REPLACE FUNCTION pgsweep.deferred_references(p_rule pgsweep.expiry_rule)
RETURNS TABLE (constraint_oid oid, on_dependent boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The usual case (deferred_keys_possible): nothing to look up in pg_constraint.
    IF NOT pgsweep.deferred_keys_possible(p_rule) THEN
        RETURN;
    END IF;
    -- Every deferrable key, not only those declared INITIALLY DEFERRED: the app may defer an
    -- INITIALLY IMMEDIATE one (SET CONSTRAINTS ... DEFERRED), and no query tells its mode in
    -- this transaction. With the clones of a key onto a partition (conparentid <> 0): a rule on
    -- a leaf partition is referenced through the clone of the key onto its partitioned parent.
    -- A clone of a key a dependent handles is handled with it.
    RETURN QUERY
    WITH RECURSIVE handled AS (
        SELECT d.constraint_oid AS oid FROM pgsweep.rule_dependents(p_rule) d
        UNION
        SELECT k.oid FROM pg_constraint k JOIN handled h ON k.conparentid = h.oid
    )
    SELECT c.oid, c.confrelid <> p_rule.table_name
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.condeferrable AND c.confdeltype = 'a'
       AND (c.confrelid = p_rule.table_name
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(p_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_rule.table_name))
       AND c.oid NOT IN (SELECT h.oid FROM handled h)
     ORDER BY c.oid;
END $$;
COMMENT ON FUNCTION pgsweep.deferred_references(pgsweep.expiry_rule) IS
    'The deferred NO ACTION keys no dependent handles onto what a rule''s delete takes';

-- ---- functions/delete_rows.sql ----------------------------------------
-- Delete the rows matching p_condition without making anyone wait for long: one pass when no
-- row is held (the common case), else SKIP LOCKED. The exception block is one subtransaction
-- per call, and a purge makes one call per rule or per committed batch, far below the 64 a
-- transaction may have before every snapshot in the cluster gets slower.
-- The SKIP LOCKED pass skips the rows the app holds, but can still wait on a lock beyond them
-- (a cascade into a child row the app holds, or has updated and not committed): it waits as
-- briefly as the first pass (pgsweep.execute_delete), and when it too times out the
-- lock_not_available error goes to the caller, which gives way for this time (never waiting
-- without limit while the app's next UPDATE of those rows queues behind the sweep).
-- With the rule, a rule that archives moves the rows, and its dependents are handled
-- (pgsweep.archiving_statement); the count is of rows deleted either way.
CREATE OR REPLACE FUNCTION pgsweep.delete_rows(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    BEGIN
        RETURN pgsweep.delete_rows_waiting_briefly(p_table, p_condition, p_rule);
    EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
        -- That pass is undone; take what is not held now.
        NULL;
    END;
    RETURN pgsweep.execute_delete(pgsweep.purge_statement(p_table, p_condition, true, p_rule));
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, or with SKIP LOCKED when a row is held (55P03 if that waits too)';

-- ---- functions/delete_rows_waiting_briefly.sql ----------------------------------------
-- The single-pass DELETE, allowed to wait briefly for a row lock (pgsweep.execute_delete says
-- how long, and why it runs with row security off).
CREATE OR REPLACE FUNCTION pgsweep.delete_rows_waiting_briefly(
    p_table regclass, p_condition text, p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgsweep.execute_delete(pgsweep.purge_statement(p_table, p_condition, false, p_rule));
END $$;
COMMENT ON FUNCTION pgsweep.delete_rows_waiting_briefly(regclass, text, pgsweep.expiry_rule) IS
    'DELETE the matching rows in one pass, waiting at most 20 ms for any lock';

-- ---- functions/drop_expired_partitions.sql ----------------------------------------
-- Every partition of a rule's table that holds only garbage (expired_partitions), removed by
-- remove_partition before the rule's rows are deleted batch by batch (which then only find the
-- partition that straddles the cutoff, and the DEFAULT one). Each lock is waited for at most
-- 100 ms, so an app writing into the table never waits longer than that behind the sweep; a
-- partition whose lock is not granted is tried three times, then left with a NOTICE (its rows
-- are row-deleted by the batches that follow; the next sweep tries again). A partition that
-- cannot be removed for good (the role may not drop it, a foreign key refers to the table, the
-- archive already has a table of its name) gets a WARNING and is row-deleted the same way.
-- Every partition's rows are counted first, before the first lock on the table: the table's
-- ACCESS EXCLUSIVE lock then covers catalog changes only. The count takes no lock writers wait
-- for (a SHARE lock would hold them off until the drop commits): a row written into such a
-- partition meanwhile is past the cutoff too, and the count may miss it, never the reverse.
-- Runs in the caller's transaction: the table's lock is held until it ends, so the sweep step
-- that calls this commits right after it.
CREATE OR REPLACE FUNCTION pgsweep.drop_expired_partitions(
    p_rule pgsweep.expiry_rule, OUT partitions integer, OUT rows bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_part   regclass;
    v_parts  regclass[] := ARRAY[]::regclass[];
    v_counts bigint[] := ARRAY[]::bigint[];
    v_count  bigint;
BEGIN
    partitions := 0;
    rows := 0;
    FOR v_part IN SELECT e.partition FROM pgsweep.expired_partitions(p_rule) e LOOP
        BEGIN
            /* A regclass: quoted by its output function.
             * @plpgsql_check_options: security_warnings = false
             */
            EXECUTE format('SELECT count(*) FROM %s', v_part) INTO v_count;
            v_parts := v_parts || v_part;
            v_counts := v_counts || v_count;
        EXCEPTION
            WHEN lock_not_available THEN
                RAISE NOTICE 'pgsweep: partition % of % left for the next sweep: a lock was not granted within %',
                    v_part, p_rule.table_name, current_setting('lock_timeout')
                    USING HINT = 'Its rows are deleted row by row meanwhile.';
            WHEN insufficient_privilege THEN
                RAISE WARNING 'pgsweep: partition % of % cannot be removed: %',
                    v_part, p_rule.table_name, SQLERRM
                    USING HINT = 'Its rows are deleted row by row instead (only its owner may drop it).';
        END;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(v_parts, 1), 0) LOOP
        FOR v_attempt IN 1..3 LOOP
            BEGIN
                rows := rows + pgsweep.remove_partition(p_rule, v_parts[i], v_counts[i]);
                partitions := partitions + 1;
                EXIT;
            EXCEPTION
                WHEN lock_not_available THEN
                    -- Sleep only while holding no lock on the table (nothing removed yet).
                    IF v_attempt < 3 AND partitions = 0 THEN
                        PERFORM pg_sleep(0.1 * v_attempt);
                        CONTINUE;
                    END IF;
                    RAISE NOTICE 'pgsweep: partition % of % left for the next sweep: a lock was not granted within %',
                        v_parts[i], p_rule.table_name, current_setting('lock_timeout')
                        USING HINT = 'Its rows are deleted row by row meanwhile.';
                    RETURN;
                WHEN insufficient_privilege OR dependent_objects_still_exist
                     OR foreign_key_violation OR duplicate_table OR invalid_schema_name THEN
                    RAISE WARNING 'pgsweep: partition % of % cannot be removed: %',
                        v_parts[i], p_rule.table_name, SQLERRM
                        USING HINT = 'Its rows are deleted row by row instead.';
                    EXIT;
            END;
        END LOOP;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.drop_expired_partitions(pgsweep.expiry_rule) IS
    'Drop (or archive) every partition past a rule''s cutoff, waiting at most 100 ms per lock';

-- ---- functions/epoch_scale.sql ----------------------------------------
-- How many of a numeric rule column's units make a second (1 or 1000); NULL for a column that
-- holds no epoch number.
CREATE OR REPLACE FUNCTION pgsweep.epoch_scale(p_rule pgsweep.expiry_rule)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pgsweep.column_type(p_rule.table_name, p_rule.column_name) IN (
           'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
           'numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
        RETURN CASE WHEN p_rule.epoch_unit = 'milliseconds' THEN 1000 ELSE 1 END;
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.epoch_scale(pgsweep.expiry_rule) IS
    'Units per second of a numeric rule column (1: seconds, 1000: milliseconds), else NULL';

-- ---- functions/epoch_unit_problem.sql ----------------------------------------
-- Epoch values a rule never takes for garbage, and why a numeric column refuses a unit.
-- An epoch value before 2000-01-01 UTC or from the year 3000 on stands for no expiry instant an
-- application writes: it is a unit misread (seconds read as milliseconds land in 1970;
-- milliseconds read as seconds in the year 50000 and later) or a sentinel (0, -1). The sweep
-- never deletes a value before 2000 (rule_condition: the floor), so rows an app starts writing
-- in another unit after the rule was made, or sentinels, are kept rather than wiped; and a rule
-- is refused when most of a sample of the values already there (up to 1000) are implausible.
-- NULL: the rule is not an epoch age rule, or its values look right.
CREATE OR REPLACE FUNCTION pgsweep.epoch_unit_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_scale numeric := pgsweep.epoch_scale(p_rule);
    v_sample bigint;
    v_implausible bigint;
BEGIN
    IF v_scale IS NULL OR p_rule.kind <> 'age' THEN
        RETURN NULL;
    END IF;
    /* Identifiers through %I and regclass.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('SELECT count(*), count(*) FILTER (WHERE v < %2$s OR v >= %3$s)'
                   '  FROM (SELECT %1$I::numeric AS v FROM %4$s WHERE %1$I IS NOT NULL LIMIT 1000) s',
                   p_rule.column_name, 946684800 * v_scale, 32503680000 * v_scale, p_rule.table_name)
       INTO v_sample, v_implausible;
    IF v_implausible * 2 > v_sample THEN
        RETURN format('%s of %s values sampled fall before 2000 or after 2999 read as %s',
                      v_implausible, v_sample, coalesce(p_rule.epoch_unit, 'seconds'));
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.epoch_unit_problem(pgsweep.expiry_rule) IS
    'Why most values of a numeric rule column are implausible in its epoch unit, or NULL';

-- ---- functions/exact_count_limit.sql ----------------------------------------
-- rule_status counts a table's rows exactly up to this many rows (reltuples); above it, it
-- reads the planner's estimates: 100000, unless the setting pgsweep.exact_count_limit says otherwise.
CREATE OR REPLACE FUNCTION pgsweep.exact_count_limit()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(nullif(current_setting('pgsweep.exact_count_limit', true), '')::bigint,
                    100000)
$$;
COMMENT ON FUNCTION pgsweep.exact_count_limit() IS
    'Tables up to this many rows are counted exactly by rule_status (setting, default 100000)';

-- ---- functions/execute_delete.sql ----------------------------------------
-- Every DELETE the engine builds (purge_statement, skip_locked_statement, archiving_statement)
-- runs here, the one place that says how it may wait and what it may see:
--   lock_timeout 20 ms: a lock the statement must wait for (a row the app holds, a foreign
--     key's cascade into a row the app holds or has updated, a trigger's lock) is waited for at
--     most that long, well under deadlock_timeout, so in a lock cycle it is almost always the
--     cleanup that gives way (only an app that had already waited 980 ms to 1 s is checked
--     first); then lock_not_available (55P03) goes to the caller;
--   row_security off: a garbage condition read through a policy gives a wrong answer (an
--     orphan rule would take a child whose parent the policy hides for a missing parent), so a
--     role a policy applies to gets the error "query would be affected by row-level security
--     policy" instead; a table's owner (without FORCE) or a BYPASSRLS role runs as before.
-- Both SET clauses end with the function, error or not. Returns the statement's ROW_COUNT.
CREATE OR REPLACE FUNCTION pgsweep.execute_delete(p_statement text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '20ms'
SET row_security = off
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    /* Only the engine's statement builders call this (PUBLIC has no EXECUTE); they quote every
     * identifier (%I, regclass) and value (%L) they put into the statement.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE p_statement;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END $$;
COMMENT ON FUNCTION pgsweep.execute_delete(text) IS
    'Run a purge''s DELETE waiting at most 20 ms for a lock, with row security off (error, not a wrong answer)';

-- ---- functions/expired_partitions.sql ----------------------------------------
-- The partitions of a rule's table that hold nothing but garbage: for an age rule without a
-- condition of its own, on a table range-partitioned on the rule's column alone, those whose
-- upper bound is at or before the cutoff (every value they can hold is < upper <= cutoff). Never the DEFAULT partition, nor one bounded by
-- MAXVALUE. Bounds are read from pg_class.relpartbound, deparsed in the settings below and cast
-- back to the column's type. detach_concurrently: DETACH ... CONCURRENTLY can take it (the table
-- has no DEFAULT partition and none half-detached: PostgreSQL forbids it then).
CREATE OR REPLACE FUNCTION pgsweep.expired_partitions(p_rule pgsweep.expiry_rule)
RETURNS TABLE (partition regclass, upper_bound text, detach_pending boolean, detach_concurrently boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, YMD'
SET timezone = 'UTC'
AS $$
DECLARE
    v_type    regtype;
    v_cutoff  text;
    v_default boolean;
    v_part    record;
    v_expired boolean;
BEGIN
    -- Only a rule that marks a row by its column's age alone marks every row of such a
    -- partition: never one with a condition of its own, nor another kind of rule. Nor a rule
    -- that archives its rows (archive_to): they must move row by row into its archive (its
    -- expired partitions can be kept whole instead: partition_archive_schema).
    IF p_rule.kind <> 'age' OR p_rule.condition IS NOT NULL OR p_rule.archive_to IS NOT NULL THEN
        RETURN;
    END IF;
    IF NOT EXISTS (
        SELECT FROM pg_partitioned_table p
          JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
         WHERE p.partrelid = p_rule.table_name AND p.partstrat = 'r' AND p.partnatts = 1
           AND a.attname = p_rule.column_name)
    THEN
        RETURN;
    END IF;
    v_type := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
    v_cutoff := pgsweep.cutoff_literal(p_rule);
    -- A DEFAULT partition forbids a concurrent detach, and so does one already half-detached.
    v_default := EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                          WHERE i.inhparent = p_rule.table_name
                            AND (pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
                                 OR i.inhdetachpending));
    FOR v_part IN
        SELECT c.oid::regclass AS part, i.inhdetachpending AS pending,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM ' TO \((.*)\)$') AS upper,
               substring(pg_get_expr(c.relpartbound, c.oid) FROM '^FOR VALUES FROM \((.*)\) TO ') AS lower
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = p_rule.table_name
         ORDER BY i.inhdetachpending DESC, c.relname
    LOOP
        CONTINUE WHEN v_part.upper IS NULL OR v_part.upper IN ('MAXVALUE', 'MINVALUE');
        -- An epoch number below the floor (before 2000: rule_condition) is never garbage, so a
        -- partition that can hold one is never garbage whole.
        CONTINUE WHEN pgsweep.epoch_scale(p_rule) IS NOT NULL AND CASE
            WHEN v_part.lower IS NULL OR v_part.lower = 'MINVALUE' THEN true
            ELSE btrim(v_part.lower, '''')::numeric < 946684800::numeric * pgsweep.epoch_scale(p_rule) END;
        /* The bound is a constant as the server deparses it (a quoted literal or a number),
         * the cutoff a literal built by cutoff_literal with %L.
         * @plpgsql_check_options: security_warnings = false
         */
        EXECUTE format('SELECT (%s)::%s <= %s', v_part.upper, v_type, v_cutoff) INTO v_expired;
        CONTINUE WHEN NOT v_expired;
        partition := v_part.part;
        upper_bound := v_part.upper;
        detach_pending := v_part.pending;
        detach_concurrently := NOT v_default;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.expired_partitions(pgsweep.expiry_rule) IS
    'Partitions of a rule''s table whose upper bound is at or before the cutoff (never DEFAULT)';

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
-- Counted as the sweep deletes (pgsweep.execute_delete): a policy that hides rows errors here
-- too, rather than counting the children of parents it hides as orphans.
SET row_security = off
AS $$
DECLARE
    v_rule    pgsweep.expiry_rule;
    v_table   regclass;
    v_match   text;
    v_earlier text := '';
    v_found   boolean := false;
BEGIN
    /* Identifiers are quoted with %I or are regclass output; the cutoff is a literal built by
     * cutoff_literal with %L, all through rule_condition. plpgsql_check cannot follow that into another function.
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
        v_match := pgsweep.rule_condition(v_rule);
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

-- ---- functions/history_retention.sql ----------------------------------------
-- How long pgsweep.run keeps a run (pruned by run_housekeeping): 30 days, unless the database
-- says otherwise (ALTER DATABASE app SET pgsweep.history_retention = '90 days', or ALTER ROLE
-- ALL SET ...), and never less than a day. Only those stored defaults count, never a session's
-- SET, PGOPTIONS or a role's own ALTER ROLE: pruning runs inside SECURITY DEFINER routines, and
-- a role allowed only to EXECUTE them must not choose how much history they delete.
CREATE OR REPLACE FUNCTION pgsweep.history_retention()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT greatest(
        coalesce((SELECT nullif(substr(c.setting, length('pgsweep.history_retention=') + 1),
                                '')::interval
                    FROM pg_db_role_setting s
                   CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
                   WHERE s.setrole = 0
                     AND s.setdatabase IN (0, (SELECT d.oid FROM pg_database d
                                                WHERE d.datname = current_database()))
                     AND c.setting LIKE 'pgsweep.history\_retention=%'
                   -- the database's own default before the one for all databases
                   ORDER BY s.setdatabase DESC LIMIT 1),
                 '30 days'),
        '1 day')
$$;
COMMENT ON FUNCTION pgsweep.history_retention() IS
    'How long run history is kept (ALTER DATABASE ... SET pgsweep.history_retention, default 30 days, at least 1 day)';

-- ---- functions/hold_parents.sql ----------------------------------------
-- Before an orphan rule deletes, no parent may be on its way in: a READ COMMITTED NOT EXISTS
-- does not see a parent another transaction has inserted and not yet committed, and would
-- delete that parent's children. So the parent table is locked in SHARE mode (it waits for
-- every transaction writing to it to end, and keeps new writers out until this transaction
-- ends), and the DELETE that follows, with a snapshot taken after the lock, sees every parent
-- there is. The lock waits at most 100 ms (app writers queue behind it meanwhile); not
-- granted, the rule deletes nothing this time (a warning), and false is returned. Only under
-- READ COMMITTED: a REPEATABLE READ snapshot may predate the lock. Other rules: true, no lock.
CREATE OR REPLACE FUNCTION pgsweep.hold_parents(p_rule pgsweep.expiry_rule)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
BEGIN
    -- A foreign key that references the rows this batch deletes (the rule's table, or a table
    -- its 'delete' dependents delete from) and is checked at COMMIT (DEFERRABLE INITIALLY
    -- DEFERRED, an ORM's) is checked at the end of each DELETE instead, so that a garbage row
    -- still referenced fails the batch's statement, where the sweep catches it, not its COMMIT.
    -- For the rest of this transaction: a batch is one.
    IF p_rule.kind <> 'orphan' THEN
        RETURN true;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE WARNING 'pgsweep: orphans of % not swept: only under READ COMMITTED',
            p_rule.table_name;
        RETURN false;
    END IF;
    BEGIN
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', p_rule.parent_table);
    EXCEPTION WHEN lock_not_available THEN
        RAISE WARNING 'pgsweep: orphans of % not swept this time: writers of % kept it busy',
            p_rule.table_name, p_rule.parent_table;
        RETURN false;
    END;
    RETURN true;
END $$;
COMMENT ON FUNCTION pgsweep.hold_parents(pgsweep.expiry_rule) IS
    'Lock an orphan rule''s parent table against writers before deleting (false: not granted)';

-- ---- functions/instant_expression.sql ----------------------------------------
-- The instant a value of the rule's column stands for, as an SQL expression over the column
-- (for ages and reports: "how long ago did this row expire"). The inverse of cutoff_literal;
-- NULL for rules that are not age rules. A wall-clock value repeated or skipped by a
-- daylight-saving change reads as the later of its two instants (what AT TIME ZONE gives), the
-- reading cutoff_literal deletes by: a row counted as garbage is one the sweep deletes, and its
-- age is never overstated.
CREATE OR REPLACE FUNCTION pgsweep.instant_expression(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type regtype := pgsweep.column_type(p_rule.table_name, p_rule.column_name);
BEGIN
    IF p_rule.kind IS DISTINCT FROM 'age' THEN
        RETURN NULL;
    ELSIF v_type = 'timestamptz'::regtype THEN
        RETURN format('%I', p_rule.column_name);
    ELSIF v_type IN ('timestamp'::regtype, 'date'::regtype) THEN
        RETURN format('(%I::timestamp AT TIME ZONE %L)', p_rule.column_name,
                      coalesce(p_rule.value_zone, 'UTC'));
    ELSIF p_rule.epoch_unit = 'milliseconds' THEN
        RETURN format('to_timestamp(%I::double precision / 1000)', p_rule.column_name);
    END IF;
    RETURN format('to_timestamp(%I::double precision)', p_rule.column_name);
END $$;
COMMENT ON FUNCTION pgsweep.instant_expression(pgsweep.expiry_rule) IS
    'The instant a value of the rule''s column stands for, as an SQL expression';

-- ---- functions/live_view_name.sql ----------------------------------------
-- The default name of a table's live view (pgsweep.create_live_view): <table>_live when that
-- fits in a name (63 bytes), else the table's name cut to fit, then _ and 8 hex digits of the
-- md5 of the whole name, then _live: two long names with a common first 63 bytes, which
-- PostgreSQL would cut to one and the same name, get two views.
CREATE OR REPLACE FUNCTION pgsweep.live_view_name(p_table name)
RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_suffix text := '_' || left(md5(p_table), 8) || '_live';
    v_head   text := p_table;
BEGIN
    IF octet_length(p_table || '_live') <= 63 THEN
        RETURN p_table || '_live';
    END IF;
    -- Character by character, so that a multibyte character is never cut in half.
    WHILE octet_length(v_head || v_suffix) > 63 LOOP
        v_head := left(v_head, -1);
    END LOOP;
    RETURN v_head || v_suffix;
END $$;
COMMENT ON FUNCTION pgsweep.live_view_name(name) IS
    'The default name of a table''s live view: <table>_live, or cut with a hash when too long';

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

-- ---- functions/locked_rule.sql ----------------------------------------
-- A rule as it is now, with its row locked (FOR SHARE) until the caller's transaction ends: a
-- sweep step reads its rule through this, so that a rule changed or removed while a run is on
-- it (a longer keep_for, remove_rule) takes effect from the next step on and never halfway
-- through one; the change waits for the step's commit (one batch). The row lock needs UPDATE on
-- pgsweep.expiry_rule, which a sweeping role does not have: hence SECURITY DEFINER, reading only
-- this one row. A change not committed within 1 s (a session that changed the rule and keeps
-- its transaction open) makes the step skip the rule this time: lock_not_available to the step.
-- NULL when the rule no longer exists.
-- 1.4: only for a role that may sweep the rule's table (DELETE on it). Up to 1.3 any role with
-- EXECUTE on the engine's routines could call this in a transaction it kept open and so hold
-- the rule's row against every change (add_rule, remove_rule, set_archive, ...) for as long as
-- it liked. The role checked is the session's (its SET ROLE, else its login role): this
-- function's own rights are the owner's, and the sweep drivers call it from no other
-- SECURITY DEFINER routine.
CREATE OR REPLACE FUNCTION pgsweep.locked_rule(p_table regclass, p_column name)
RETURNS pgsweep.expiry_rule
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $$
DECLARE
    v_caller name := CASE WHEN current_setting('role') = 'none' THEN session_user
                          ELSE current_setting('role') END;
    v_rule   pgsweep.expiry_rule;
BEGIN
    IF NOT has_table_privilege(v_caller, p_table, 'DELETE') THEN
        RAISE EXCEPTION 'pgsweep: role % may not delete from %, so it may not lock its rule',
            v_caller, p_table
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'A role that sweeps needs DELETE on the tables it sweeps (docs/engine.md, "Roles").';
    END IF;
    SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
     WHERE r.table_name OPERATOR(pg_catalog.=) p_table AND r.column_name OPERATOR(pg_catalog.=) p_column
       FOR SHARE;
    RETURN v_rule;
END $$;
COMMENT ON FUNCTION pgsweep.locked_rule(regclass, name) IS
    'A rule, its row locked against change until the transaction ends (NULL: removed); only for a role that may delete from its table';

-- ---- functions/negative_interval_field.sql ----------------------------------------
-- Whether any field of an interval is negative: its months (years with them), its days or its
-- time part. An interval compares as months * 30 days + days + time, so '1 mon -30 days' is
-- not less than '0' and passed a plain keep_for >= '0' check, yet it means "a month later,
-- then 30 days earlier": 0, 1 or -2 days by the calendar month it is applied in.
CREATE OR REPLACE FUNCTION pgsweep.negative_interval_field(p_value interval)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT extract(year FROM p_value) * 12 + extract(month FROM p_value) < 0
           OR extract(day FROM p_value) < 0
           OR extract(hour FROM p_value) * 3600 + extract(minute FROM p_value) * 60
              + extract(second FROM p_value) < 0
$$;
COMMENT ON FUNCTION pgsweep.negative_interval_field(interval) IS
    'Whether an interval has a negative months, days or time part';

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

-- ---- functions/open_run_mark.sql ----------------------------------------
-- The value of the session setting pgsweep.open_run while a committing run is open: its run_id
-- and the statement it is live in (statement_timestamp(): the receipt of the client's command,
-- the same through every COMMIT of one CALL). run_begin sets it, every batched step refreshes
-- it (a client-driven cleanup sends each step as a statement of its own), run_end and the
-- procedure empty it. A run_begin in the same statement is nested in that live run, never
-- after it: close_own_leftovers then closes nothing.
CREATE OR REPLACE FUNCTION pgsweep.open_run_mark(p_run_id bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_run_id::text || '@' || to_char(statement_timestamp() AT TIME ZONE 'UTC',
                                            'YYYYMMDDHH24MISSUS')
$$;
COMMENT ON FUNCTION pgsweep.open_run_mark(bigint) IS
    'pgsweep.open_run''s value for an open run: its run_id and the statement it is live in';

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

-- ---- functions/pending_run.sql ----------------------------------------
-- The pending run of this transaction (run_begin with p_commits false), read from the setting
-- pgsweep.pending_run; NULL when there is none. Any session may set that setting, so the
-- SECURITY DEFINER recorders (run_begin, run_record, run_close) read it only through this
-- check: its run_id must be the last one this session drew from the run sequence, which only
-- the engine's routines can draw from (currval is per session). A forged state (another run_id,
-- or none drawn yet) is an error, never a run written with ids or figures the caller chose.
-- Called with the recorders' rights; a caller of its own needs USAGE on the sequence.
CREATE OR REPLACE FUNCTION pgsweep.pending_run()
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state jsonb := nullif(current_setting('pgsweep.pending_run', true), '')::jsonb;
BEGIN
    IF v_state IS NULL THEN
        RETURN NULL;
    END IF;
    IF (v_state ->> 'run_id')::bigint IS DISTINCT FROM currval('pgsweep.run_run_id_seq') THEN
        RAISE EXCEPTION 'pgsweep: the setting pgsweep.pending_run was not made by pgsweep.run_begin'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'RESET pgsweep.pending_run; runs are begun with pgsweep.run_begin().';
    END IF;
    RETURN v_state;
END $$;
COMMENT ON FUNCTION pgsweep.pending_run() IS
    'This transaction''s pending run (pgsweep.pending_run), checked as made by run_begin';

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
-- never waits, whatever the app holds; a lock beyond them (a foreign key's cascade into a row
-- the app holds) is waited for briefly (pgsweep.execute_delete), then the trigger gives up with
-- a warning. Left to the scheduled sweep: an orphan rule (it would lock its parent table inside
-- the app's insert), and a rule whose delete a deferred foreign key no dependent covers would
-- check (pgsweep.deferred_references: a garbage row it references would fail the app's own
-- COMMIT, out of the trigger's reach).
-- Dependents the rule has are acted on in the same statement (archiving_statement).
CREATE OR REPLACE FUNCTION pgsweep.purge_few(p_rule pgsweep.expiry_rule, p_rows integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_rule.kind = 'orphan' THEN
        RETURN 0;
    END IF;
    -- The same question as the caller's-transaction sweep asks (one query, in one place): a
    -- deferred key onto its table, or onto a table its 'delete' dependents delete from.
    IF EXISTS (SELECT FROM pgsweep.deferred_references(p_rule)) THEN
        RETURN 0;
    END IF;
    RETURN pgsweep.execute_delete(pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(
        p_rule.table_name, pgsweep.rule_condition(p_rule), p_rule.column_name, p_rows)));
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
    v_type      text;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pgsweep.hold_parents(p_rule) THEN
        deleted := 0;
        RETURN;
    END IF;
    v_condition := pgsweep.rule_condition(p_rule, p_from);
    /* Built by batch_boundary_statement and rule_condition from quoted parts (%I, %L, regclass).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.batch_boundary_statement(v_table, v_column, v_condition, p_batch_size)
       INTO next_from;
    IF next_from IS NULL THEN
        deleted := pgsweep.delete_rows(v_table, v_condition, p_rule);
        RETURN;
    END IF;
    deleted := pgsweep.delete_rows(v_table, pgsweep.rule_condition(p_rule, p_from, next_from), p_rule);
    IF deleted > 0 THEN
        RETURN;
    END IF;
    -- As rule_condition: a char(n) column's bound is cast to bpchar, never to char(1).
    v_type := CASE pgsweep.column_type(v_table, v_column)
                  WHEN 'character'::regtype THEN 'pg_catalog.bpchar'
                  ELSE pgsweep.column_type(v_table, v_column)::text END;
    -- Through execute_delete, as every delete: its short lock wait, row security off.
    deleted := pgsweep.execute_delete(pgsweep.archiving_statement(p_rule,
        pgsweep.skip_locked_statement(
            v_table, format('%s AND %I = %L::%s', v_condition, v_column, next_from, v_type),
            NULL, p_batch_size)));
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
-- cutoff (the rule's index for a few rows, a sequential scan for a backlog); the garbage a
-- deferred key references stays (pgsweep.deferred_references, pgsweep.purge_rule_leaving).
CREATE OR REPLACE FUNCTION pgsweep.purge_rule(p_rule pgsweep.expiry_rule)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN pgsweep.purge_rule_leaving(
        p_rule, ARRAY(SELECT d.constraint_oid FROM pgsweep.deferred_references(p_rule) d
                       WHERE NOT d.on_dependent));
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule(pgsweep.expiry_rule) IS
    'Delete every garbage row of one rule with one DELETE, in the caller''s transaction';

-- ---- functions/purge_rule_leaving.sql ----------------------------------------
-- purge_rule with the rule's deferred keys onto its own table already known (p_deferred: the
-- constraint oids of pgsweep.deferred_references(p_rule) that are not on a dependent, in any
-- order): the garbage a row of theirs references stays. pgsweep.sweep_step asks
-- deferred_references once per rule and hands its answer here, rather than have it asked again.
CREATE OR REPLACE FUNCTION pgsweep.purge_rule_leaving(p_rule pgsweep.expiry_rule, p_deferred oid[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Only an orphan rule has a parent to hold (hold_parents says true for any other).
    IF p_rule.kind = 'orphan' AND NOT pgsweep.hold_parents(p_rule) THEN
        RETURN 0;
    END IF;
    RETURN pgsweep.delete_rows(
        p_rule.table_name,
        pgsweep.rule_condition(p_rule)
            || CASE WHEN cardinality(p_deferred) > 0 THEN
                   coalesce((SELECT string_agg(' AND NOT ' || pgsweep.referenced_condition(k.oid),
                                               '' ORDER BY k.oid)
                               FROM unnest(p_deferred) AS k(oid)), '')
               ELSE '' END,
        p_rule);
END $$;
COMMENT ON FUNCTION pgsweep.purge_rule_leaving(pgsweep.expiry_rule, oid[]) IS
    'Delete every garbage row of one rule but those the given deferred keys reference, in one DELETE';

-- ---- functions/purge_statement.sql ----------------------------------------
-- The DELETE of the rows matching p_condition. With p_skip_locked the rows are first taken
-- with FOR UPDATE SKIP LOCKED (skip_locked_statement): rows another transaction holds are left
-- alone, at the price of a second visit to every row and a WAL record for each lock. A function
-- of its own so that EXPLAIN (pgsweep verify, the tests) can inspect exactly the statement a
-- purge runs. Given the rule, and the rule archives, the rows deleted go into its archive in
-- the same statement (pgsweep.archiving_statement).
CREATE OR REPLACE FUNCTION pgsweep.purge_statement(
    p_table regclass, p_condition text, p_skip_locked boolean,
    p_rule pgsweep.expiry_rule DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_skip_locked THEN
        RETURN pgsweep.archiving_statement(p_rule, pgsweep.skip_locked_statement(p_table, p_condition));
    END IF;
    RETURN pgsweep.archiving_statement(p_rule, format('DELETE FROM %s WHERE %s', p_table, p_condition));
END $$;
COMMENT ON FUNCTION pgsweep.purge_statement(regclass, text, boolean, pgsweep.expiry_rule) IS
    'The DELETE a purge runs for a condition, with or without SKIP LOCKED, archiving (for EXPLAIN)';

-- ---- functions/quoted_names.sql ----------------------------------------
-- Column names as a list of quoted identifiers, in order: "a", "b".
CREATE OR REPLACE FUNCTION pgsweep.quoted_names(p_names name[])
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('%I', n), ', ' ORDER BY i) FROM unnest(p_names) WITH ORDINALITY u (n, i)
$$;
COMMENT ON FUNCTION pgsweep.quoted_names(name[]) IS 'Names as a comma-separated list of quoted identifiers';

-- ---- functions/referenced_condition.sql ----------------------------------------
-- "A row of the referencing table points at this row" through the foreign key p_constraint, as
-- a condition on the referenced table's row (its columns unqualified, as in rule_condition).
-- The referencing table's columns are renamed pgsweep_d1, pgsweep_d2, ... in the subquery so
-- that none of them captures a column of the referenced row with the same name.
CREATE OR REPLACE FUNCTION pgsweep.referenced_condition(p_constraint oid)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table    regclass;
    v_aliases  text;
    v_inner    text;
    v_outer    text;
BEGIN
    SELECT c.conrelid INTO v_table FROM pg_constraint c WHERE c.oid = p_constraint;
    WITH cols AS (
        SELECT pa.attnum, format('pgsweep_d%s', row_number() OVER (ORDER BY pa.attnum)) AS alias
          FROM pg_attribute pa
         WHERE pa.attrelid = v_table AND pa.attnum > 0 AND NOT pa.attisdropped)
    SELECT (SELECT string_agg(cols.alias, ', ' ORDER BY cols.attnum) FROM cols),
           string_agg(format('d.%s', cols.alias), ', ' ORDER BY k.i),
           string_agg(format('%I', ra.attname), ', ' ORDER BY k.i)
      INTO v_aliases, v_inner, v_outer
      FROM pg_constraint c
     CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY k (n, rn, i)
      JOIN cols ON cols.attnum = k.n
      JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.rn
     WHERE c.oid = p_constraint;
    RETURN format('EXISTS (SELECT FROM %s AS d (%s) WHERE (%s) = (%s))',
                  v_table, v_aliases, v_inner, v_outer);
END $$;
COMMENT ON FUNCTION pgsweep.referenced_condition(oid) IS
    'A condition on a referenced row: some row references it through this foreign key';

-- ---- functions/remove_partition.sql ----------------------------------------
-- Take one partition that holds only garbage (expired_partitions) out of its table and drop it,
-- or move it into the rule's partition_archive_schema as a plain table; returns its rows. Plain
-- DETACH / DROP lock the parent ACCESS EXCLUSIVE for a catalog change only, never longer than
-- the caller's lock_timeout to obtain (drop_expired_partitions sets a short one); the rows are
-- counted first, under a SHARE lock on the partition alone, so the count is what went (p_rows:
-- the caller counted them already, in this transaction, under that lock).
CREATE OR REPLACE FUNCTION pgsweep.remove_partition(
    p_rule pgsweep.expiry_rule, p_partition regclass, p_rows bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_pending boolean;
    v_rows    bigint;
    v_archive name := p_rule.partition_archive_schema;
    v_name    name;
BEGIN
    SELECT e.detach_pending INTO v_pending
      FROM pgsweep.expired_partitions(p_rule) e WHERE e.partition = p_partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of % past the cutoff of its rule on "%"',
            p_partition, p_rule.table_name, p_rule.column_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.relname INTO v_name FROM pg_class c WHERE c.oid = p_partition;
    IF v_archive IS NOT NULL
       AND to_regclass(format('%I.%I', v_archive, v_name)) IS NOT NULL THEN
        RAISE EXCEPTION 'cannot archive partition %: %.% already exists', p_partition,
            quote_ident(v_archive), quote_ident(v_name) USING ERRCODE = 'duplicate_table';
    END IF;
    /* Identifiers are regclass output or quoted with %I.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', p_partition);
    IF p_rows IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', p_partition) INTO v_rows;
    ELSE
        v_rows := p_rows;
    END IF;
    IF v_pending THEN
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s FINALIZE', p_rule.table_name, p_partition);
    END IF;
    IF v_archive IS NULL THEN
        EXECUTE format('DROP TABLE %s', p_partition);
    ELSE
        IF NOT v_pending THEN
            EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', p_rule.table_name, p_partition);
        END IF;
        EXECUTE format('ALTER TABLE %s SET SCHEMA %I', p_partition, v_archive);
    END IF;
    RETURN v_rows;
END $$;
COMMENT ON FUNCTION pgsweep.remove_partition(pgsweep.expiry_rule, regclass, bigint) IS
    'Detach one expired partition and drop it (or move it to the archive schema); its rows';

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

-- ---- functions/require_leading_index.sql ----------------------------------------
-- Refuse (naming the index to build) unless a valid index of p_table leads with p_column: every
-- rule's batches walk its column in index order.
CREATE OR REPLACE FUNCTION pgsweep.require_leading_index(p_table regclass, p_column name)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.require_leading_index(regclass, name) IS
    'Raise, naming the index to build, unless an index of the table leads with the column';

-- ---- functions/require_own_run.sql ----------------------------------------
-- The history is written only by the session that began a run: run_record and run_end are
-- SECURITY DEFINER, so without this check any role allowed to sweep could close or inflate
-- another session's run (or have run_end analyze tables with the engine owner's rights).
CREATE OR REPLACE FUNCTION pgsweep.require_own_run(p_run_id bigint)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- This very session: its pid and, where the run recorded it, its backend_start (a later
    -- session given the same pid is another session). Still open: a run once closed is history,
    -- never re-closed or added to (1.3 let a role re-close its run with any status and text).
    IF NOT EXISTS (SELECT FROM pgsweep.run r
                    WHERE r.run_id = p_run_id AND r.pid = pg_backend_pid()
                      AND (r.backend_start IS NULL
                           OR r.backend_start = (SELECT a.backend_start FROM pg_stat_activity a
                                                  WHERE a.pid = pg_backend_pid()))) THEN
        RAISE EXCEPTION 'pgsweep: run % was not begun by this session', p_run_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT FROM pgsweep.run r WHERE r.run_id = p_run_id AND r.status = 'running') THEN
        RAISE EXCEPTION 'pgsweep: run % is closed already', p_run_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.require_own_run(bigint) IS
    'Refuse to record into a run another session began';

-- ---- functions/rule_condition.sql ----------------------------------------
-- The garbage of one rule as an SQL condition, within [p_from, p_before) of its column when
-- given. Bounds are text (a batch hands its end to the next), read back as the column's type.
--   age:       column < cutoff; for an epoch number also column >= the floor (2000-01-01 in the
--              rule's unit: see pgsweep.epoch_unit_problem);
--   condition: the condition alone;
--   orphan:    the key is not NULL and no parent row has it;
-- and the rule's condition, if any, and (1.2) no referencing row of a 'keep' dependent. Outside age rules the column may be NULL in garbage rows:
-- the last range of a sweep (a start, no end) includes them, as the probe sorts them last.
-- The parent's columns are renamed in the orphan's subquery, so that no parent column captures
-- a child column of the same name in the key: for a key column the planner makes it an
-- anti-join; a key expression probes the parent's index row by row.
-- p_as_of_now: the cutoff as an expression of now() (cutoff_expression) rather than a literal,
-- for a condition kept and evaluated later (a view that hides expired rows).
CREATE OR REPLACE FUNCTION pgsweep.rule_condition(
    p_rule pgsweep.expiry_rule, p_from text DEFAULT NULL, p_before text DEFAULT NULL,
    p_as_of_now boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column name := p_rule.column_name;
    -- The bounds are cast to the column's type; a char(n) column's regtype reads "character",
    -- which as a cast is char(1) and would cut each bound to its first letter.
    v_regtype regtype := pgsweep.column_type(p_rule.table_name, v_column);
    v_type   text := CASE v_regtype WHEN 'character'::regtype THEN 'pg_catalog.bpchar'
                                    ELSE v_regtype::text END;
    v_scale  integer;
    v_key    text := coalesce(p_rule.child_key, format('%I', v_column));
    v_parts  text[] := '{}'::text[];
    v_aliases text;
    v_parent_key text;
BEGIN
    IF p_rule.kind = 'orphan' THEN
        -- The parent's columns are renamed pgsweep_p1, pgsweep_p2, ... in the subquery, so that
        -- no parent column captures a child column of the same name in the key; the planner
        -- still turns NOT EXISTS into an anti-join.
        SELECT string_agg(format('pgsweep_p%s', a.n), ', ' ORDER BY a.n),
               max(format('pgsweep_p%s', a.n)) FILTER (WHERE a.attname = p_rule.parent_key)
          INTO v_aliases, v_parent_key
          FROM (SELECT pa.attname, row_number() OVER (ORDER BY pa.attnum) AS n
                  FROM pg_attribute pa
                 WHERE pa.attrelid = p_rule.parent_table AND pa.attnum > 0
                   AND NOT pa.attisdropped) a;
        IF p_rule.child_key IS NULL THEN
            v_parts := v_parts || format(
                '%1$s IS NOT NULL AND NOT EXISTS (SELECT FROM %2$s AS p (%3$s) WHERE p.%4$s = %1$s)',
                v_key, p_rule.parent_table, v_aliases, v_parent_key);
        ELSE
            -- A key expression is computed once per child, then probes the parent's index.
            v_parts := v_parts || format(
                '(%1$s) IS NOT NULL AND NOT EXISTS (SELECT FROM (SELECT %1$s AS k) c'
                ' JOIN %2$s AS p (%3$s) ON p.%4$s = c.k)',
                v_key, p_rule.parent_table, v_aliases, v_parent_key);
        END IF;
    ELSIF p_rule.kind = 'age' THEN
        -- Separate statements: the executor checks the right to run every function an
        -- expression names, even one a CASE never reaches.
        IF p_as_of_now THEN
            v_parts := v_parts || format('%I < %s', v_column, pgsweep.cutoff_expression(p_rule));
        ELSE
            v_parts := v_parts || format('%I < %s', v_column, pgsweep.cutoff_literal(p_rule));
        END IF;
        -- A time column holds no epoch number (epoch_scale would say NULL): not asked again.
        IF v_regtype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
            v_scale := pgsweep.epoch_scale(p_rule);
        END IF;
        IF v_scale IS NOT NULL THEN
            v_parts := v_parts || format('%I >= %s', v_column, 946684800::bigint * v_scale);
        END IF;
    END IF;
    IF p_rule.condition IS NOT NULL THEN
        v_parts := v_parts || format('(%s)', p_rule.condition);
    END IF;
    -- 'keep' dependents (pgsweep.set_dependent): garbage that a row of theirs references stays,
    -- so counts, the dry run and the delete agree. Not in a kept condition (a live view): a
    -- kept row is still expired for a reader, and the view reads the rule's table alone.
    IF NOT p_as_of_now AND EXISTS (SELECT FROM pgsweep.rule_dependent d
                                    WHERE d.table_name = p_rule.table_name
                                      AND d.column_name = p_rule.column_name
                                      AND d.action = 'keep') THEN
        v_parts := v_parts || ARRAY(
            SELECT format('NOT %s', pgsweep.referenced_condition(d.constraint_oid))
              FROM pgsweep.rule_dependents(p_rule) WITH ORDINALITY d
             WHERE d.action = 'keep' AND d.referenced_table = p_rule.table_name
             ORDER BY d.ordinality);
    END IF;
    -- NULLs of the walked column can be garbage only outside age rules, in a column that allows
    -- them, and (orphans) when the key is an expression rather than the column itself.
    -- (Nested, so that the whole rule's condition, p_from NULL, asks the catalog nothing here.)
    IF p_from IS NOT NULL THEN
        IF p_before IS NULL AND p_rule.kind <> 'age'
           AND NOT (p_rule.kind = 'orphan' AND p_rule.child_key IS NULL)
           AND NOT (SELECT a.attnotnull FROM pg_attribute a
                     WHERE a.attrelid = p_rule.table_name AND a.attname = v_column) THEN
            v_parts := v_parts || format('(%I >= %L::%s OR %I IS NULL)', v_column, p_from, v_type,
                                         v_column);
        ELSE
            v_parts := v_parts || format('%I >= %L::%s', v_column, p_from, v_type);
        END IF;
    END IF;
    IF p_before IS NOT NULL THEN
        v_parts := v_parts || format('%I < %L::%s', v_column, p_before, v_type);
    END IF;
    RETURN array_to_string(v_parts, ' AND ');
END $$;
COMMENT ON FUNCTION pgsweep.rule_condition(pgsweep.expiry_rule, text, text, boolean) IS
    'The rows a rule marks as garbage, optionally within [from, before), as an SQL condition';

-- ---- functions/rule_dependents.sql ----------------------------------------
-- A rule's dependents whose foreign key still exists (a dropped key or table is nothing to act
-- on), with the columns on both sides in key order: first those referencing the rule's table,
-- then those one level further (referencing a 'delete' dependent's table).
CREATE OR REPLACE FUNCTION pgsweep.rule_dependents(p_rule pgsweep.expiry_rule)
RETURNS TABLE (referencing_table regclass, constraint_name name, action text,
               referenced_table regclass, referencing_columns name[], referenced_columns name[],
               constraint_oid oid)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: every batch asks (rule_condition, the statement builders), and PL/pgSQL
-- keeps the plans a SQL function with a SET clause would make again at each call; a rule with no
-- dependent (nearly every rule) is answered by one index probe.
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pgsweep.rule_dependent d
                    WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT d.referencing_table, d.constraint_name, d.action, c.confrelid::regclass,
           ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k (n, i)
                   JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
           ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k (n, i)
                   JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
           c.oid
      FROM pgsweep.rule_dependent d
      JOIN pg_constraint c
        ON c.conrelid = d.referencing_table AND c.conname = d.constraint_name
       AND c.contype = 'f' AND c.conparentid = 0
     WHERE d.table_name = p_rule.table_name AND d.column_name = p_rule.column_name
     ORDER BY c.confrelid <> p_rule.table_name, d.referencing_table::text, d.constraint_name;
END $$;
COMMENT ON FUNCTION pgsweep.rule_dependents(pgsweep.expiry_rule) IS
    'A rule''s dependents whose foreign key exists, with its columns, nearest level first';

-- ---- functions/rule_figures.sql ----------------------------------------
-- The figures of pgsweep.rule_status that read the rule's table. Their cost follows the garbage,
-- not the table: garbage (exact: the rows rule_condition marks, a range of the rule's index),
-- its oldest and newest instants and the smallest value of the column (the ends of that index).
-- The table's rows, and those whose column is NULL (they never expire), are counted exactly up
-- to exact_count_limit() rows (pg_class.reltuples); a larger table is never scanned for them:
-- they are the planner's estimates (reltuples, and pg_stats.null_frac of the column), and
-- estimated says so. NULLs when the rule cannot run (rule_problem).
CREATE OR REPLACE FUNCTION pgsweep.rule_figures(
    p_rule pgsweep.expiry_rule,
    OUT rows_total bigint, OUT rows_never_expire bigint, OUT estimated boolean,
    OUT garbage bigint, OUT oldest_garbage_at timestamptz, OUT newest_garbage_at timestamptz,
    OUT oldest_row_at timestamptz, OUT cutoff_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   regclass := p_rule.table_name;
    v_column  name := p_rule.column_name;
    v_instant text;
    v_tuples  double precision;
    v_unknown boolean;
    v_bytes   bigint;
BEGIN
    IF pgsweep.rule_problem(p_rule) IS NOT NULL THEN
        RETURN;
    END IF;
    -- A condition or orphan rule has no instant (instant_expression is NULL): its garbage is
    -- counted, and it has no ages, no cutoff and no oldest row to tell.
    v_instant := coalesce(pgsweep.instant_expression(p_rule), 'NULL::timestamptz');
    IF p_rule.kind = 'age' THEN
        cutoff_at := now() - p_rule.keep_for;
    END IF;
    /* Identifiers are quoted with %I or are regclass output; rule_condition and
     * instant_expression quote what they put in (%I, %L).
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('SELECT count(*), min(%1$s), max(%1$s) FROM %2$s WHERE %3$s',
                   v_instant, v_table, pgsweep.rule_condition(p_rule))
       INTO garbage, oldest_garbage_at, newest_garbage_at;
    IF p_rule.kind = 'age' THEN
        EXECUTE format('SELECT %1$s FROM (SELECT %2$I FROM %3$s WHERE %2$I IS NOT NULL'
                       ' ORDER BY %2$I LIMIT 1) s', v_instant, v_column, v_table)
           INTO oldest_row_at;
    END IF;
    -- A partitioned table's rows are its partitions'.
    SELECT sum(greatest(c.reltuples, 0)), bool_or(c.reltuples < 0),
           sum(pg_relation_size(c.oid))
      INTO v_tuples, v_unknown, v_bytes
      FROM pg_class c
     WHERE c.oid = v_table AND c.relkind <> 'p'
        OR c.oid IN (SELECT t.relid FROM pg_partition_tree(v_table) t WHERE t.isleaf);
    IF v_tuples <= pgsweep.exact_count_limit()
       AND (NOT v_unknown OR v_bytes <= pgsweep.exact_count_limit() * 100) THEN
        -- Small (or never analyzed, and no larger than 100 bytes a row would make it).
        EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %I IS NULL) FROM %s',
                       v_column, v_table)
           INTO rows_total, rows_never_expire;
        estimated := false;
        RETURN;
    END IF;
    -- Never analyzed and large: its row count is unknown (NULL) until ANALYZE.
    rows_total := CASE WHEN NOT v_unknown THEN v_tuples::bigint END;
    SELECT (rows_total * coalesce(max(s.null_frac), 0))::bigint INTO rows_never_expire
      FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid
      JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                     AND s.attname = v_column
     WHERE c.oid = v_table;
    estimated := true;
END $$;
COMMENT ON FUNCTION pgsweep.rule_figures(pgsweep.expiry_rule) IS
    'Garbage (exact, index-driven) and row counts (exact when small, else estimates) of a rule';

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

-- ---- functions/rule_lock_problem.sql ----------------------------------------
-- Why this session cannot take a rule's lock (pgsweep.lock_rule gave up): the session holding
-- it and its run (the run's advisory lock, taken by run_begin: pg_locks shows it to every
-- role, where the history and pg_stat_activity may be hidden). Whether that run is still
-- working cannot be told from here (a CALL pgsweep.sweep() cancelled right after a commit
-- leaves its run's lock too, in a session that may sit idle in a pool for days, and pgsweep
-- cleanup is idle between its batches), so both ways out are said: that session frees the rule
-- at its next run (close_own_leftovers), or ending its pid does. Recorded
-- as the rule's 'skipped: ' reason, so pgsweep status, health and the history name it.
CREATE OR REPLACE FUNCTION pgsweep.rule_lock_problem(p_table regclass, p_column name)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_pid integer := pgsweep.rule_lock_holder(p_table, p_column);
    v_run bigint := (SELECT min(l.objid::bigint) FROM pg_locks l
                      WHERE l.locktype = 'advisory' AND l.granted AND l.pid = v_pid
                        AND l.objsubid = 2 AND l.classid = 1886614391::oid
                        AND l.database = (SELECT d.oid FROM pg_database d
                                           WHERE d.datname = current_database()));
BEGIN
    IF v_pid IS NULL THEN
        RETURN 'another run is working on it';
    ELSIF v_run IS NOT NULL THEN
        -- Alive or a leftover alike (a client between batches is idle too): both are said.
        RETURN format('another run is working on it (pid %s, run %s); if that session is idle'
                      ' (a pooled connection whose sweep was cancelled), its next run frees the'
                      ' rule, or end it: SELECT pg_terminate_backend(%s)', v_pid, v_run, v_pid);
    END IF;
    RETURN format('another run is working on it (pid %s, with no run in progress: a leftover);'
                  ' that session frees it at its next run, or end it:'
                  ' SELECT pg_terminate_backend(%s)', v_pid, v_pid);
END $$;
COMMENT ON FUNCTION pgsweep.rule_lock_problem(regclass, name) IS
    'Why a rule''s lock is not free: the run and pid holding it, and how to free it';

-- ---- functions/rule_problem.sql ----------------------------------------
-- Why a rule cannot run now, or NULL when it can: its table or column is gone (dropped, or the
-- column renamed, where no event trigger removed the rule at the time) or the column's type
-- changed to one that cannot expire, or (age rules) to any other type than the one the rule was
-- registered for: timestamptz to timestamp, a number to a timestamp, ... change what a value
-- means, and the rule must be told again (its zone, its unit) rather than guess; or the table
-- it archives into is gone. Every consumer skips such a rule, says so, and goes on with the
-- others; pgsweep verify fails it.
CREATE OR REPLACE FUNCTION pgsweep.rule_problem(p_rule pgsweep.expiry_rule)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: it keeps its plan from call to call (a SQL function with a SET
-- clause is planned again at every call, and every sweep step asks).
AS $$
BEGIN
    RETURN (SELECT CASE
            WHEN NOT EXISTS (SELECT FROM pg_class c
                              WHERE c.oid = p_rule.table_name AND c.relkind IN ('r', 'p'))
                THEN format('table %s no longer exists', p_rule.table_name::oid)
            WHEN a.atttypid IS NULL
                THEN format('column %I of %s no longer exists', p_rule.column_name, p_rule.table_name)
            WHEN p_rule.kind = 'orphan' AND NOT EXISTS (
                     SELECT FROM pg_attribute pa
                      WHERE pa.attrelid = p_rule.parent_table AND pa.attname = p_rule.parent_key
                        AND pa.attnum > 0 AND NOT pa.attisdropped)
                THEN format('parent key %I of %s no longer exists', p_rule.parent_key,
                            p_rule.parent_table::oid)
            -- A dropped archive leaves its oid behind: every batch would fail on it.
            WHEN p_rule.archive_to IS NOT NULL AND NOT EXISTS (
                     SELECT FROM pg_class c WHERE c.oid = p_rule.archive_to AND c.relkind IN ('r', 'p'))
                THEN format('its archive table %s no longer exists (pgsweep.set_archive(%L, %L, '''')'
                            ' to delete without archiving, or point it at a new archive)',
                            p_rule.archive_to::oid, p_rule.table_name, p_rule.column_name)
            WHEN p_rule.kind = 'age' AND a.atttypid NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype,
                                    'smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                                    'numeric'::regtype, 'double precision'::regtype, 'real'::regtype)
                THEN format('column %I of %s has type %s, which cannot expire',
                            p_rule.column_name, p_rule.table_name, a.atttypid::regtype)
            WHEN p_rule.kind = 'age' AND a.atttypid <> p_rule.registered_type
                THEN format('column %I of %s was %s when the rule was registered and is %s now:'
                            ' register the rule again with pgsweep.add_rule(%L, %L, %L%s)',
                            p_rule.column_name, p_rule.table_name, p_rule.registered_type,
                            a.atttypid::regtype, p_rule.table_name::text, p_rule.column_name,
                            p_rule.keep_for,
                            CASE WHEN a.atttypid IN ('timestamp'::regtype, 'date'::regtype)
                                 THEN ', p_value_zone => ''<the zone its values are in>'''
                                 WHEN a.atttypid IN ('timestamptz'::regtype) THEN ''
                                 ELSE ', p_epoch_unit => ''seconds'' or ''milliseconds''' END)
        END
          FROM (SELECT NULL) AS one
          LEFT JOIN pg_attribute a
                 ON a.attrelid = p_rule.table_name AND a.attname = p_rule.column_name
                AND a.attnum > 0 AND NOT a.attisdropped);
END $$;
COMMENT ON FUNCTION pgsweep.rule_problem(pgsweep.expiry_rule) IS
    'Why a rule cannot run (its table or column is gone, retyped or cannot expire), or NULL';

-- ---- functions/run_alive.sql ----------------------------------------
-- Whether the session of a 'running' run still holds the run's advisory lock (taken by
-- run_begin for runs that commit before they end). pg_locks shows every session's locks to
-- every role, where pg_stat_activity hides other roles' backend_start; a dead session has
-- released its locks, so a run whose lock is gone was interrupted (killed, or its server
-- restarted).
CREATE OR REPLACE FUNCTION pgsweep.run_alive(p_run_id bigint, p_pid bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.pid = p_pid
           AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
           AND l.classid = 1886614391::oid
           AND l.objid = (p_run_id % 2147483648)::integer::oid AND l.objsubid = 2)
$$;
COMMENT ON FUNCTION pgsweep.run_alive(bigint, bigint) IS
    'Whether the session running a run is still there (it holds the run''s advisory lock)';

-- ---- functions/run_begin.sql ----------------------------------------
-- Start recording a cleanup run; returns its run_id for run_record and run_end. p_invoked_by is
-- what the caller is ('procedure', 'function', 'cli'); a pg_cron session records 'scheduler',
-- and a session may state its own with the setting pgsweep.invoked_by (the pgsweep command sets
-- 'cli').
-- A run that commits before it ends (p_commits: the procedure, client-driven batches) writes its
-- row at once and holds a session advisory lock until run_end, so that once its session is gone
-- it shows as 'interrupted' (run_alive); before it, what this session's own earlier run left
-- open (pgsweep.close_own_leftovers: a cancel outside the procedure's handlers), then cheap
-- housekeeping (run_housekeeping, skipped when another run_begin is doing it).
-- A run inside one transaction (p_commits false: sweep_table) writes nothing yet: its run_id and
-- the rules recorded so far are kept in the transaction's setting pgsweep.pending_run, and only
-- a record that deleted, archived, paused or failed writes the run (run_write_pending); one that
-- did none of that ends as a single row of pgsweep.idle_run (run_close). It never tidies the
-- history: a call that deletes nothing does no housekeeping (run_close does it for one written
-- function run in 64).
-- run_begin, run_record and run_close are SECURITY DEFINER: a role allowed to sweep (EXECUTE on
-- the engine's routines, DELETE on its tables) records its runs without any right on the history
-- tables, which only the engine writes; the run names the session's role (session_user).
CREATE OR REPLACE FUNCTION pgsweep.run_begin(p_invoked_by text, p_commits boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_invoked_by text := coalesce(
        nullif(current_setting('pgsweep.invoked_by', true), ''),
        CASE WHEN current_setting('application_name') = 'pg_cron' THEN 'scheduler' END);
    v_pending jsonb := pgsweep.pending_run();
    v_run_id bigint;
BEGIN
    IF v_pending IS NOT NULL AND NOT (v_pending ->> 'written')::boolean THEN
        -- Two open runs in one transaction: the older is written in full, as any other.
        PERFORM pgsweep.run_write_pending(v_pending);
    END IF;
    -- A run this session began and never closed (a cancel outside the procedure's handlers),
    -- and the rule locks it left: closed and released before anything else. A committing run
    -- always looks (one look at pg_locks per run); an in-transaction one (the app's calls) only
    -- when this session's last committing run is not known to have ended.
    IF p_commits OR current_setting('pgsweep.open_run', true) <> '' THEN
        PERFORM pgsweep.close_own_leftovers();
    END IF;
    IF NOT p_commits THEN
        v_run_id := nextval('pgsweep.run_run_id_seq');
        PERFORM set_config('pgsweep.pending_run',
                           jsonb_build_object('run_id', v_run_id,
                                              'invoked_by', coalesce(v_invoked_by, p_invoked_by),
                                              'started_at', clock_timestamp(),
                                              'written', false, 'rules', '[]'::jsonb)::text,
                           true);
        RETURN v_run_id;
    END IF;
    IF pg_try_advisory_xact_lock(1886614391, 0) THEN
        PERFORM pgsweep.run_housekeeping();
    END IF;
    INSERT INTO pgsweep.run (invoked_by, pid, backend_start)
    SELECT coalesce(v_invoked_by,
                    CASE WHEN a.backend_type = 'pg_cron' THEN 'scheduler' END, p_invoked_by),
           pg_backend_pid(), a.backend_start
      FROM (SELECT) AS one
      LEFT JOIN pg_stat_activity a ON a.pid = pg_backend_pid()
    RETURNING run_id INTO v_run_id;
    PERFORM pg_advisory_lock(1886614391, (v_run_id % 2147483648)::integer);
    -- Session-wide (not undone by the commit that follows): emptied when the run ends. With
    -- the statement it is live in (pgsweep.open_run_mark), so that a call nested in it (an
    -- app's trigger calling a cleanup function) never takes it for a leftover.
    PERFORM set_config('pgsweep.open_run', pgsweep.open_run_mark(v_run_id), false);
    RETURN v_run_id;
END $$;
COMMENT ON FUNCTION pgsweep.run_begin(text, boolean) IS
    'Record the start of a cleanup run (and tidy the history); returns its run_id';

-- ---- functions/run_close.sql ----------------------------------------
-- The part of run_end that writes the history, with the engine's rights (SECURITY DEFINER, like
-- run_begin): the run's status ('succeeded', 'failed', 'stopped'), error and end time, the
-- release of a committing run's advisory lock; returns the tables the run deleted a large share
-- of (analyze_share() of pg_class.reltuples, or any rows of a table never analyzed), which
-- run_end then ANALYZEs with the caller's own rights, never these. A pending run (run_begin with
-- p_commits false) that succeeded with nothing written ends as one row of pgsweep.idle_run.
-- Only the session that began a run may end it.
CREATE OR REPLACE FUNCTION pgsweep.run_close(p_run_id bigint, p_status text, p_error text)
RETURNS TABLE (table_name regclass, rows_deleted numeric)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_state jsonb := pgsweep.pending_run();
    v_pending boolean := (v_state ->> 'run_id')::bigint IS NOT DISTINCT FROM p_run_id;
BEGIN
    IF v_pending THEN
        PERFORM set_config('pgsweep.pending_run', '', true);
        IF NOT (v_state ->> 'written')::boolean THEN
            IF p_status = 'succeeded' AND p_error IS NULL THEN
                -- run_record keeps one entry per rule: no grouping here.
                INSERT INTO pgsweep.idle_run
                       (run_id, started_at, invoked_by, table_names, column_names, batches)
                SELECT p_run_id, (v_state ->> 'started_at')::timestamptz, v_state ->> 'invoked_by',
                       coalesce(array_agg(e.table_name), '{}'),
                       coalesce(array_agg(e.column_name), '{}'),
                       coalesce(array_agg(e.batches), '{}')
                  FROM jsonb_to_recordset(v_state -> 'rules')
                           AS e(table_name text, column_name name, batches bigint);
                -- A database swept only by an app's calls that mostly find nothing still has its
                -- history tidied: one idle run in 4096 does it (a few ms, so about a
                -- microsecond per call), where a deleting call would do it one time in 64.
                IF p_run_id % 4096 = 0 AND pg_try_advisory_xact_lock(1886614391, 0) THEN
                    PERFORM pgsweep.run_housekeeping();
                END IF;
                RETURN;
            END IF;
            PERFORM pgsweep.run_write_pending(v_state);
            PERFORM set_config('pgsweep.pending_run', '', true);
        END IF;
    END IF;
    PERFORM pgsweep.require_own_run(p_run_id);
    IF v_pending AND p_run_id % 64 = 0 AND pg_try_advisory_xact_lock(1886614391, 0) THEN
        -- One written in-transaction run in 64 tidies the history (committing runs do at
        -- run_begin), so that a database swept only by function calls is tidied too: by a call
        -- that deleted (and wrote anyway), never by one that deleted nothing, and at its end,
        -- outside every rule's own step.
        PERFORM pgsweep.run_housekeeping();
    END IF;
    UPDATE pgsweep.run r
       SET status = p_status, error = p_error, ended_at = clock_timestamp()
     WHERE r.run_id = p_run_id;
    -- Only a committing run holds the lock (a pending run never took it): no pg_locks look-up
    -- for the others.
    IF NOT v_pending THEN
        PERFORM pg_advisory_unlock(1886614391, (p_run_id % 2147483648)::integer)
          FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
           AND l.classid = 1886614391::oid
           AND l.objid = (p_run_id % 2147483648)::integer::oid AND l.objsubid = 2;
    END IF;
    RETURN QUERY
    SELECT t.oid::regclass, t.deleted
      FROM (SELECT to_regclass(rr.table_name) AS oid, sum(rr.rows_deleted) AS deleted
              FROM pgsweep.run_rule rr WHERE rr.run_id = p_run_id
             GROUP BY rr.table_name) t
      JOIN pg_class c ON c.oid = t.oid
     WHERE t.deleted > 0
       AND (c.reltuples < 0 OR t.deleted >= pgsweep.analyze_share() * c.reltuples);
END $$;
COMMENT ON FUNCTION pgsweep.run_close(bigint, text, text) IS
    'Close a run with its status; return the tables it deleted a large share of';

-- ---- functions/run_end.sql ----------------------------------------
-- Close a run (run_close: its status 'succeeded', 'failed' or 'stopped', error, end time), then
-- ANALYZE each table it deleted a large share of (pgsweep.analyze_swept, with the caller's
-- rights), so the planner stops costing rows that are gone. ANALYZE reads a sample (300 x
-- default_statistics_target rows), not the table; it runs in this transaction, also inside a
-- caller's transaction (unlike VACUUM). Never VACUUM FULL: autovacuum reclaims the space.
-- CALL pgsweep.sweep() does not call this: it commits the run's close before it analyzes, so
-- that a cancel during an ANALYZE cannot leave the run open. This function is SECURITY INVOKER
-- on purpose (analyze_swept), and its lock_timeout bounds only what it waits for itself.
CREATE OR REPLACE FUNCTION pgsweep.run_end(
    p_run_id bigint, p_status text DEFAULT 'succeeded', p_error text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_tables regclass[];
    v_rows   numeric[];
BEGIN
    SELECT array_agg(c.table_name), array_agg(c.rows_deleted) INTO v_tables, v_rows
      FROM pgsweep.run_close(p_run_id, p_status, p_error) c;
    -- The run run_begin flagged as this session's open one is closed (close_own_leftovers).
    IF split_part(current_setting('pgsweep.open_run', true), '@', 1) = p_run_id::text THEN
        PERFORM set_config('pgsweep.open_run', '', false);
    END IF;
    IF v_tables IS NOT NULL THEN
        PERFORM pgsweep.analyze_swept(v_tables, v_rows);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.run_end(bigint, text, text) IS
    'Close a run with its status; ANALYZE, with the caller''s rights, the tables it deleted a large share of';

-- ---- functions/run_housekeeping.sql ----------------------------------------
-- What committing runs' run_begin does before each run (and an in-transaction run now and
-- then), each step reading only what it changes: runs still 'running' whose session is gone
-- become 'interrupted' (a partial index holds the running ones); runs older than
-- history_retention() go (an index on started_at; their rules with them), their totals added to
-- rule_counter; the in-transaction runs that deleted nothing (pgsweep.idle_run) are added to
-- rule_counter (each rule's newest kept); the insert trigger's sweeps (pgsweep.trigger_sweep) are folded into one
-- 'trigger' run per day. A rule's outcome in a run is the run's status, except that a rule with
-- no error of a run that failed on other rules succeeded, and so did every rule of a 'stopped'
-- run but the last one it worked (the one its time budget cut): pgsweep.rule_counters and
-- pgsweep.rule_last_run say the same.
CREATE OR REPLACE FUNCTION pgsweep.run_housekeeping()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_folded jsonb;
    v_day    record;
    v_run_id bigint;
BEGIN
    UPDATE pgsweep.run r
       SET status = 'interrupted',
           ended_at = coalesce((SELECT max(rr.ended_at) FROM pgsweep.run_rule rr
                                 WHERE rr.run_id = r.run_id), r.started_at),
           error = 'the session running it ended before the run did'
     WHERE r.status = 'running' AND r.pid IS DISTINCT FROM pg_backend_pid()
       AND NOT pgsweep.run_alive(r.run_id, r.pid);
    -- The totals of the runs pruned go to rule_counter in the same transaction, so the
    -- counters (pgsweep.rule_counters: rule_counter plus the history) never go down.
    WITH gone AS (
        DELETE FROM pgsweep.run r
         WHERE r.started_at < now() - pgsweep.history_retention() AND r.status <> 'running'
        RETURNING r.run_id, r.status),
    outcome AS (
        SELECT rr.*, g.status,
               CASE WHEN rr.error IS NULL AND g.status = 'failed'
                         AND EXISTS (SELECT FROM pgsweep.run_rule o
                                      WHERE o.run_id = rr.run_id AND o.error IS NOT NULL
                                        AND o.error NOT LIKE 'skipped: %')
                    THEN 'succeeded'
                    WHEN rr.error IS NULL AND g.status = 'stopped'
                         AND EXISTS (SELECT FROM pgsweep.run_rule o
                                      WHERE o.run_id = rr.run_id AND o.error IS NULL
                                        AND (o.started_at, o.table_name, o.column_name)
                                            > (rr.started_at, rr.table_name, rr.column_name))
                    THEN 'succeeded'
                    ELSE g.status END AS outcome
          FROM gone g JOIN pgsweep.run_rule rr ON rr.run_id = g.run_id)
    INSERT INTO pgsweep.rule_counter AS c
           (table_name, column_name, rows_deleted_total, rows_archived_total, runs_total,
            failures_total, last_success_at)
    SELECT o.table_name, o.column_name, sum(o.rows_deleted), sum(o.rows_archived), count(*),
           count(*) FILTER (WHERE o.error IS NOT NULL OR o.outcome IN ('failed', 'interrupted')),
           max(o.ended_at) FILTER (WHERE o.error IS NULL AND o.outcome = 'succeeded')
      FROM outcome o
     GROUP BY o.table_name, o.column_name
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET rows_deleted_total = c.rows_deleted_total + excluded.rows_deleted_total,
           rows_archived_total = c.rows_archived_total + excluded.rows_archived_total,
           runs_total = c.runs_total + excluded.runs_total,
           failures_total = c.failures_total + excluded.failures_total,
           last_success_at = greatest(c.last_success_at, excluded.last_success_at);
    -- Each idle run is one successful run of each of its rules, and deleted nothing. Each
    -- rule's newest stays, for rule_last_run (a later failed run still shows as the last).
    WITH newest AS (
        SELECT DISTINCT ON (u.table_name, u.column_name) i.run_id
          FROM pgsweep.idle_run i
         CROSS JOIN LATERAL unnest(i.table_names, i.column_names) AS u(table_name, column_name)
         ORDER BY u.table_name, u.column_name, i.ended_at DESC, i.run_id DESC),
    gone AS (
        DELETE FROM pgsweep.idle_run i
         WHERE NOT EXISTS (SELECT FROM newest n WHERE n.run_id = i.run_id)
        RETURNING i.*)
    INSERT INTO pgsweep.rule_counter AS c (table_name, column_name, runs_total, last_success_at)
    SELECT u.table_name, u.column_name, count(*), max(g.ended_at)
      FROM gone g
     CROSS JOIN LATERAL unnest(g.table_names, g.column_names) AS u(table_name, column_name)
     GROUP BY u.table_name, u.column_name
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET runs_total = c.runs_total + excluded.runs_total,
           last_success_at = greatest(c.last_success_at, excluded.last_success_at);
    WITH gone AS (DELETE FROM pgsweep.trigger_sweep t RETURNING t.*)
    SELECT jsonb_agg(d) INTO v_folded
      FROM (SELECT g.table_name, g.column_name, date_trunc('day', g.swept_at) AS day,
                   min(g.swept_at) AS first_at, max(g.swept_at) AS last_at,
                   sum(g.rows_deleted) AS rows_deleted, count(*) AS sweeps
              FROM gone g GROUP BY 1, 2, 3) d;
    FOR v_day IN
        SELECT * FROM jsonb_to_recordset(coalesce(v_folded, '[]'))
            AS d(table_name text, column_name name, day timestamptz, first_at timestamptz,
                 last_at timestamptz, rows_deleted bigint, sweeps bigint)
    LOOP
        SELECT r.run_id INTO v_run_id FROM pgsweep.run r
         WHERE r.invoked_by = 'trigger' AND r.started_at >= v_day.day
           AND r.started_at < v_day.day + interval '1 day'
         ORDER BY r.run_id LIMIT 1;
        IF v_run_id IS NULL THEN
            INSERT INTO pgsweep.run (invoked_by, started_at, ended_at, status, role_name)
            VALUES ('trigger', v_day.first_at, v_day.last_at, 'succeeded', current_user)
            RETURNING run_id INTO v_run_id;
        END IF;
        UPDATE pgsweep.run r
           SET ended_at = greatest(r.ended_at, v_day.last_at),
               rows_deleted = r.rows_deleted + v_day.rows_deleted,
               batches = r.batches + v_day.sweeps
         WHERE r.run_id = v_run_id;
        INSERT INTO pgsweep.run_rule AS rr
               (run_id, table_name, column_name, started_at, ended_at, rows_deleted, batches)
        VALUES (v_run_id, v_day.table_name, v_day.column_name, v_day.first_at, v_day.last_at,
                v_day.rows_deleted, v_day.sweeps)
        ON CONFLICT (run_id, table_name, column_name) DO UPDATE
           SET ended_at = greatest(rr.ended_at, excluded.ended_at),
               rows_deleted = rr.rows_deleted + excluded.rows_deleted,
               batches = rr.batches + excluded.batches;
        v_run_id := NULL;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.run_housekeeping() IS
    'Mark interrupted runs, prune old history, count idle runs, fold the insert trigger''s sweeps into daily runs';

-- ---- functions/run_order.sql ----------------------------------------
-- The rules of a run (every table's, or p_table's), in the order every driver works them: an
-- orphan rule after every rule of its parent table, so that the parents a run deletes take their
-- orphans with them in the same run (an orphan whose parent is deleted later in the run would
-- wait for the next run); otherwise by table and column, as the dry run counts them. depth is
-- how many orphan rules stand between a rule and a table no orphan rule depends on (a cycle of
-- orphan rules, parent to child and back, is cut at 8 levels: each is still swept once).
CREATE OR REPLACE FUNCTION pgsweep.run_order(p_table regclass DEFAULT NULL)
RETURNS TABLE (table_name regclass, column_name name, depth integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: it keeps its plan from call to call (a SQL function with a SET
-- clause is planned again at every call, and every run and sweep_table call asks).
AS $$
BEGIN
    IF p_table IS NOT NULL THEN
        -- One table without orphan rules (what every sweep_table call asks): all its rules are
        -- at depth 0, in column order, without walking every rule of the database. One query:
        -- nothing found (an orphan rule, or no rule at all) takes the walk below.
        RETURN QUERY
            SELECT r.table_name, r.column_name, 0
              FROM pgsweep.expiry_rule r
             WHERE r.table_name = p_table
               AND NOT EXISTS (SELECT FROM pgsweep.expiry_rule o
                                WHERE o.table_name = p_table AND o.kind = 'orphan')
             ORDER BY r.column_name;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RETURN QUERY
        WITH RECURSIVE below (table_name, column_name, depth) AS (
            SELECT r.table_name, r.column_name, 0
              FROM pgsweep.expiry_rule r
            UNION ALL
            SELECT child.table_name, child.column_name, b.depth + 1
              FROM below b
              JOIN pgsweep.expiry_rule child
                ON child.kind = 'orphan' AND child.parent_table = b.table_name
             WHERE b.depth < 8)
        SELECT b.table_name, b.column_name, max(b.depth)::integer
          FROM below b
         WHERE p_table IS NULL OR b.table_name = p_table
         GROUP BY b.table_name, b.column_name
         ORDER BY max(b.depth), b.table_name::text, b.column_name;
END $$;
COMMENT ON FUNCTION pgsweep.run_order(regclass) IS
    'The rules a run works, in order: an orphan rule after the rules of its parent table';

-- ---- functions/run_record.sql ----------------------------------------
-- Add what one batch (or one whole rule, in a function run) did to a run, in the transaction
-- that did it: the counts are exact whatever happens to the run later. p_since is when that
-- work began (the rule's start on its first record). A rule skipped or failed carries p_error.
-- Only the run's own rows are written: two runs at once never wait on each other here. A record
-- of a pending run (run_begin with p_commits false) that deleted, archived, paused and failed
-- nothing is only added to the pending state; any other writes the run first.
CREATE OR REPLACE FUNCTION pgsweep.run_record(
    p_run_id bigint, p_table regclass, p_column name, p_deleted bigint,
    p_batches bigint DEFAULT 1, p_pauses integer DEFAULT 0, p_paused_for interval DEFAULT '0',
    p_since timestamptz DEFAULT NULL, p_error text DEFAULT NULL, p_archived bigint DEFAULT 0)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := pgsweep.table_key(p_table);
    v_state jsonb := pgsweep.pending_run();
BEGIN
    IF (v_state ->> 'run_id')::bigint = p_run_id AND NOT (v_state ->> 'written')::boolean THEN
        IF p_deleted = 0 AND p_archived = 0 AND p_error IS NULL AND p_pauses = 0
           AND p_paused_for = '0' THEN
            -- One entry per rule, so that run_close writes the idle run without grouping: a
            -- rule recorded again (a caller of its own; sweep_table records each rule once)
            -- adds to its entry.
            IF jsonb_array_length(v_state -> 'rules') > 0
               AND v_state -> 'rules' @> jsonb_build_array(jsonb_build_object(
                                         'table_name', v_table, 'column_name', p_column)) THEN
                v_state := jsonb_set(v_state, '{rules}', (
                    SELECT jsonb_agg(CASE WHEN r.rule ->> 'table_name' = v_table
                                               AND r.rule ->> 'column_name' = p_column
                                          THEN r.rule || jsonb_build_object(
                                                   'ended_at', clock_timestamp(),
                                                   'batches', (r.rule ->> 'batches')::bigint
                                                              + p_batches)
                                          ELSE r.rule END ORDER BY r.n)
                      FROM jsonb_array_elements(v_state -> 'rules') WITH ORDINALITY AS r(rule, n)));
            ELSE
                v_state := jsonb_insert(v_state, '{rules, -1}',
                    jsonb_build_object('table_name', v_table, 'column_name', p_column,
                                       'started_at', coalesce(p_since, clock_timestamp()),
                                       'ended_at', clock_timestamp(), 'batches', p_batches),
                    true);
            END IF;
            PERFORM set_config('pgsweep.pending_run', v_state::text, true);
            RETURN;
        END IF;
        PERFORM pgsweep.run_write_pending(v_state);
    END IF;
    PERFORM pgsweep.require_own_run(p_run_id);
    INSERT INTO pgsweep.run_rule AS rr
           (run_id, table_name, column_name, started_at, ended_at, rows_deleted, rows_archived,
            batches, pauses, paused_for, error)
    VALUES (p_run_id, v_table, p_column, coalesce(p_since, clock_timestamp()), clock_timestamp(),
            p_deleted, p_archived, p_batches, p_pauses, p_paused_for, p_error)
    ON CONFLICT (run_id, table_name, column_name) DO UPDATE
       SET ended_at = excluded.ended_at,
           rows_deleted = rr.rows_deleted + excluded.rows_deleted,
           rows_archived = rr.rows_archived + excluded.rows_archived,
           batches = rr.batches + excluded.batches,
           pauses = rr.pauses + excluded.pauses,
           paused_for = rr.paused_for + excluded.paused_for,
           error = coalesce(excluded.error, rr.error);
    UPDATE pgsweep.run r
       SET rows_deleted = r.rows_deleted + p_deleted,
           rows_archived = r.rows_archived + p_archived,
           batches = r.batches + p_batches,
           pauses = r.pauses + p_pauses,
           paused_for = r.paused_for + p_paused_for
     WHERE r.run_id = p_run_id;
END $$;
COMMENT ON FUNCTION pgsweep.run_record(bigint, regclass, name, bigint, bigint, integer, interval, timestamptz, text, bigint) IS
    'Add one batch''s (or rule''s) counts to a run and its rule';

-- ---- functions/run_write_pending.sql ----------------------------------------
-- Write a run that run_begin kept pending (p_commits false: see run_begin) into pgsweep.run, with
-- the rules recorded so far, once a record makes it more than an idle run. Returns the state
-- with written = true, for the transaction's setting pgsweep.pending_run. Called by the
-- SECURITY DEFINER recorders, with their rights; a caller of its own needs INSERT on the history.
CREATE OR REPLACE FUNCTION pgsweep.run_write_pending(p_state jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_run_id bigint := (p_state ->> 'run_id')::bigint;
    v_state  jsonb := jsonb_set(p_state, '{written}', 'true') - 'rules';
BEGIN
    INSERT INTO pgsweep.run (run_id, started_at, invoked_by, pid, batches) OVERRIDING SYSTEM VALUE
    SELECT v_run_id, (p_state ->> 'started_at')::timestamptz, p_state ->> 'invoked_by',
           pg_backend_pid(),
           coalesce((SELECT sum((r.rule ->> 'batches')::bigint)
                       FROM jsonb_array_elements(p_state -> 'rules') AS r(rule)), 0);
    INSERT INTO pgsweep.run_rule AS rr (run_id, table_name, column_name, started_at, ended_at,
                                        batches)
    SELECT v_run_id, r.table_name, r.column_name, min(r.started_at), max(r.ended_at),
           sum(r.batches)
      FROM jsonb_to_recordset(p_state -> 'rules')
               AS r(table_name text, column_name name, started_at timestamptz,
                    ended_at timestamptz, batches bigint)
     GROUP BY r.table_name, r.column_name;
    PERFORM set_config('pgsweep.pending_run', v_state::text, true);
    RETURN v_state;
END $$;
COMMENT ON FUNCTION pgsweep.run_write_pending(jsonb) IS
    'Write a pending in-transaction run and its rules so far into pgsweep.run';

-- ---- functions/save_rule.sql ----------------------------------------
-- Record a checked rule (a keep_for with a negative field refused), replacing the one with its (table, column) if any, with the type its
-- column has now: the type its values are read as (a later retype is a problem: rule_problem).
CREATE OR REPLACE FUNCTION pgsweep.save_rule(p_rule pgsweep.expiry_rule)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Every way a rule is registered comes here (add_rule and the other add_ functions, the
    -- policy files through add_rule): a keep_for with a negative field is refused whatever its
    -- total, which the table's CHECK (keep_for >= '0') alone lets through.
    IF pgsweep.negative_interval_field(p_rule.keep_for) THEN
        RAISE EXCEPTION 'keep_for % has a negative part', quote_literal(p_rule.keep_for::text)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give how long a row is kept past its expiry with no negative field, e.g. ''30 days''.';
    END IF;
    INSERT INTO pgsweep.expiry_rule AS r
           (table_name, column_name, keep_for, value_zone, epoch_unit, kind, condition,
            parent_table, parent_key, child_key, archive_to, registered_type)
    VALUES (p_rule.table_name, p_rule.column_name, p_rule.keep_for, p_rule.value_zone,
            p_rule.epoch_unit, p_rule.kind, p_rule.condition, p_rule.parent_table,
            p_rule.parent_key, p_rule.child_key, p_rule.archive_to,
            pgsweep.column_type(p_rule.table_name, p_rule.column_name))
    ON CONFLICT (table_name, column_name) DO UPDATE
       SET keep_for = excluded.keep_for, value_zone = excluded.value_zone,
           epoch_unit = excluded.epoch_unit, kind = excluded.kind,
           condition = excluded.condition, parent_table = excluded.parent_table,
           parent_key = excluded.parent_key, child_key = excluded.child_key,
           registered_type = excluded.registered_type;
    -- archive_to is the rule's own setting (pgsweep.set_archive): re-registering keeps it.
END $$;
COMMENT ON FUNCTION pgsweep.save_rule(pgsweep.expiry_rule) IS
    'Insert or replace a rule that its add_ function has checked';

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

-- ---- functions/set_archive.sql ----------------------------------------
-- Make a rule move its rows into an archive table as it deletes them (docs/rules.md), or, with
-- p_archive => '' , stop archiving. The archive is p_archive, or <schema>.<table>_archive when
-- NULL; created when missing (the table's columns, then archived_at timestamptz and
-- archived_by text, and an index on archived_at so that the archive can have its own rule:
-- pgsweep.add_rule(archive, 'archived_at', '90 days')); when it exists, checked: every column
-- of the table, same name and type, plus those two, and the same owner as the table (its
-- triggers run with the sweep's rights, as the table's own do). Returns the archive.
CREATE OR REPLACE FUNCTION pgsweep.set_archive(
    p_table regclass, p_column name, p_archive text DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_archive regclass;
    v_name    text;
    v_missing text;
BEGIN
    IF NOT EXISTS (SELECT FROM pgsweep.expiry_rule r
                    WHERE r.table_name = p_table AND r.column_name = p_column) THEN
        RAISE EXCEPTION 'table % has no rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one first (pgsweep.add_rule).';
    END IF;
    IF p_archive = '' THEN
        UPDATE pgsweep.expiry_rule r SET archive_to = NULL
         WHERE r.table_name = p_table AND r.column_name = p_column;
        RETURN NULL;
    END IF;
    -- A name without a schema is in the table's schema (never in this function's search_path,
    -- which is pg_catalog's); each part is quoted again from what parse_ident read.
    SELECT CASE WHEN p_archive IS NULL THEN format('%I.%I', n.nspname, c.relname || '_archive')
                WHEN cardinality(parse_ident(p_archive)) = 1
                THEN format('%I.%I', n.nspname, (parse_ident(p_archive))[1])
                WHEN cardinality(parse_ident(p_archive)) = 2
                THEN format('%I.%I', (parse_ident(p_archive))[1], (parse_ident(p_archive))[2])
           END INTO v_name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_table;
    IF v_name IS NULL THEN
        RAISE EXCEPTION 'archive name "%" is not [schema.]table', p_archive
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_archive := to_regclass(v_name);
    IF v_archive IS NULL THEN
        /* The table is regclass output, the archive's name is quoted part by part (%I).
         * @plpgsql_check_options: security_warnings = false
         */
        EXECUTE format('CREATE TABLE %s (LIKE %s)', v_name, p_table);
        v_archive := to_regclass(v_name);
        EXECUTE format('ALTER TABLE %s ADD COLUMN archived_at timestamptz NOT NULL DEFAULT now(),'
                       ' ADD COLUMN archived_by text NOT NULL', v_archive);
        EXECUTE format('CREATE INDEX ON %s (archived_at)', v_archive);
    END IF;
    IF v_archive = p_table THEN
        RAISE EXCEPTION 'a table cannot be its own archive' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('%I %s', t.attname, format_type(t.atttypid, t.atttypmod)), ', ')
      INTO v_missing
      FROM (SELECT a.attname, a.atttypid, a.atttypmod FROM pg_attribute a
             WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
            UNION ALL SELECT 'archived_at', 'timestamptz'::regtype, -1
            UNION ALL SELECT 'archived_by', 'text'::regtype, -1) t
     WHERE NOT EXISTS (SELECT FROM pg_attribute b
                        WHERE b.attrelid = v_archive AND b.attname = t.attname
                          AND b.atttypid = t.atttypid AND NOT b.attisdropped
                          -- the same length or precision, or none: never a value cut short
                          AND (b.atttypmod = t.atttypmod OR b.atttypmod = -1));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'archive % lacks columns of % it must hold: %', v_archive, p_table, v_missing
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF (SELECT c.relowner FROM pg_class c WHERE c.oid = v_archive)
       IS DISTINCT FROM (SELECT c.relowner FROM pg_class c WHERE c.oid = p_table) THEN
        RAISE EXCEPTION 'archive % has another owner than %', v_archive, p_table
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Its triggers would run with the sweep''s rights: give it the table''s owner.';
    END IF;
    UPDATE pgsweep.expiry_rule r SET archive_to = v_archive
     WHERE r.table_name = p_table AND r.column_name = p_column;
    RETURN v_archive;
END $$;
COMMENT ON FUNCTION pgsweep.set_archive(regclass, name, text) IS
    'Make a rule archive the rows it deletes (creating or checking the archive table), or stop';

-- ---- functions/set_dependent.sql ----------------------------------------
-- Say what a rule's delete does to the rows that reference its garbage through the foreign key
-- p_constraint (docs/rules.md, "Dependents"): 'delete' them, 'set null' their referencing
-- columns (both in the same statement as the garbage), or 'keep' the garbage they reference;
-- NULL forgets the key. The key must reference the rule's table, or, one level further, the
-- table of one of the rule's 'delete' dependents (then 'keep' is refused: its rows are deleted
-- because their own parent is). p_referencing_table picks the key when two tables have one of
-- that name. Refused: a key of the rule's table onto itself, 'set null' on a NOT NULL column,
-- and 'set null' and 'delete' on one table (one statement would change a row twice).
CREATE OR REPLACE FUNCTION pgsweep.set_dependent(
    p_table regclass, p_column name, p_constraint name, p_action text,
    p_referencing_table regclass DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule pgsweep.expiry_rule;
    v_key  pg_constraint;
    v_keys integer;
BEGIN
    SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one first (pgsweep.add_rule).';
    END IF;
    IF p_action IS NULL THEN
        DELETE FROM pgsweep.rule_dependent d
         WHERE d.table_name = p_table AND d.column_name = p_column
           AND d.constraint_name = p_constraint
           AND (p_referencing_table IS NULL OR d.referencing_table = p_referencing_table);
        RETURN;
    END IF;
    IF p_action NOT IN ('delete', 'set null', 'keep') THEN
        RAISE EXCEPTION 'unknown dependent action "%"', p_action
            USING ERRCODE = 'invalid_parameter_value', HINT = 'One of: delete, set null, keep.';
    END IF;
    SELECT c.* INTO v_key
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.conname = p_constraint AND c.conparentid = 0
       AND (p_referencing_table IS NULL OR c.conrelid = p_referencing_table)
       AND (c.confrelid = p_table
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(v_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_table));
    SELECT count(*) INTO v_keys
      FROM pg_constraint c
     WHERE c.contype = 'f' AND c.conname = p_constraint AND c.conparentid = 0
       AND (p_referencing_table IS NULL OR c.conrelid = p_referencing_table)
       AND (c.confrelid = p_table
            OR c.confrelid IN (SELECT d.referencing_table FROM pgsweep.rule_dependents(v_rule) d
                                WHERE d.action = 'delete' AND d.referenced_table = p_table));
    IF v_key.oid IS NULL THEN
        v_keys := 0;
    END IF;
    IF v_keys = 0 THEN
        RAISE EXCEPTION 'no foreign key "%" references % (or a table its rule''s ''delete'' dependents delete from)',
            p_constraint, p_table
            USING ERRCODE = 'undefined_object',
                  HINT = 'The keys referencing it: SELECT conrelid::regclass, conname FROM pg_constraint WHERE confrelid = '
                         || quote_literal(p_table::text) || '::regclass;';
    ELSIF v_keys > 1 THEN
        RAISE EXCEPTION 'foreign key name "%" is ambiguous: % tables have one', p_constraint, v_keys
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Name its table (p_referencing_table).';
    END IF;
    IF v_key.conrelid = v_key.confrelid OR v_key.conrelid = p_table THEN
        RAISE EXCEPTION 'foreign key "%" of % references its own table: not handled', p_constraint,
            v_key.conrelid::regclass USING ERRCODE = 'feature_not_supported';
    END IF;
    IF v_key.confrelid <> p_table AND p_action = 'keep' THEN
        RAISE EXCEPTION 'foreign key "%" references a dependent that is deleted: ''keep'' cannot keep it',
            p_constraint USING ERRCODE = 'invalid_parameter_value',
                               HINT = 'Use delete or set null, or keep the dependent itself.';
    END IF;
    IF p_action = 'set null' AND EXISTS (
           SELECT FROM pg_attribute a
            WHERE a.attrelid = v_key.conrelid AND a.attnum = ANY (v_key.conkey) AND a.attnotnull) THEN
        RAISE EXCEPTION 'foreign key "%" of %: a referencing column is NOT NULL, it cannot be set null',
            p_constraint, v_key.conrelid::regclass USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT FROM pgsweep.rule_dependent d
                WHERE d.table_name = p_table AND d.column_name = p_column
                  AND d.referencing_table = v_key.conrelid AND d.constraint_name <> p_constraint
                  AND d.action IN ('delete', 'set null') AND p_action IN ('delete', 'set null')
                  AND d.action <> p_action) THEN
        RAISE EXCEPTION 'table % already has a dependent of this rule with the other action',
            v_key.conrelid::regclass
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'One statement would both delete and update a row of it.';
    END IF;
    INSERT INTO pgsweep.rule_dependent AS d
           (table_name, column_name, referencing_table, constraint_name, action)
    VALUES (p_table, p_column, v_key.conrelid, p_constraint, p_action)
    ON CONFLICT (table_name, column_name, referencing_table, constraint_name)
    DO UPDATE SET action = EXCLUDED.action;
END $$;
COMMENT ON FUNCTION pgsweep.set_dependent(regclass, name, name, text, regclass) IS
    'What a rule''s delete does to the rows referencing its garbage through a foreign key (NULL: forget)';

-- ---- functions/set_lag_target.sql ----------------------------------------
-- Set the expiry lag a rule may reach before verify and health go red (NULL: back to
-- default_lag_target()). A function of its own so add_rule keeps its signature.
CREATE OR REPLACE FUNCTION pgsweep.set_lag_target(p_table regclass, p_column name, p_lag_target interval)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_lag_target < '0'::interval THEN
        RAISE EXCEPTION 'a lag target must not be negative, not %', p_lag_target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE pgsweep.expiry_rule r SET lag_target = p_lag_target
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no expiry rule on %.%', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.set_lag_target(regclass, name, interval) IS
    'Set (or with NULL reset) the lag target of one expiry rule';

-- ---- functions/set_partition_archive.sql ----------------------------------------
-- Keep the partitions a rule takes out of its table (expired_partitions) as plain tables in
-- p_schema instead of dropping them; NULL drops them again. The schema must exist.
CREATE OR REPLACE FUNCTION pgsweep.set_partition_archive(
    p_table regclass, p_column name, p_schema name)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_schema IS NOT NULL AND to_regnamespace(quote_ident(p_schema)) IS NULL THEN
        RAISE EXCEPTION 'schema "%" does not exist', p_schema
            USING ERRCODE = 'invalid_schema_name',
                  HINT = format('CREATE SCHEMA %I;', p_schema);
    END IF;
    UPDATE pgsweep.expiry_rule r SET partition_archive_schema = p_schema
     WHERE r.table_name = p_table AND r.column_name = p_column;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no expiry rule on column "%"', p_table, p_column
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.set_partition_archive(regclass, name, name) IS
    'Move a rule''s expired partitions into this schema instead of dropping them (NULL: drop)';

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
-- A sweep that deleted rows is recorded in pgsweep.trigger_sweep (docs/observability.md).
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
            -- Counted in aggregate: one short insert-only row per sweep that deleted (never per
            -- insert, never an update another session could wait on); run_begin folds them.
            IF v_deleted > 0 THEN
                INSERT INTO pgsweep.trigger_sweep (table_name, column_name, rows_deleted)
                VALUES (pgsweep.table_key(TG_RELID::regclass), TG_ARGV[0], v_deleted);
            END IF;
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

-- ---- functions/sweep_step.sql ----------------------------------------
-- One step of a sweep: the unit CALL pgsweep.sweep(), pgsweep.sweep_table(), the cleanup
-- functions, pgsweep cleanup and pgsweep run all repeat, so that every decision about a rule's
-- rows is taken here, once, inside the step's own transaction:
--   * the rule is read as it is now, its row locked until the step commits (locked_rule): a
--     rule changed or removed by another session applies from the next step on (in the
--     caller's transaction, sweep_table, it is read unlocked: see below);
--   * the rule is skipped, with a warning, when it cannot run (rule_problem), is gone, or
--     another run holds it (lock_rule, waiting pgsweep.lock_wait);
--   * p_cursor NULL begins the rule: its advisory lock is taken (released when the rule is done,
--     failed, gave way or was skipped: never left behind by a step), and its partitions
--     entirely past the cutoff go whole (unless p_whole_partitions is off: pgsweep cleanup
--     detaches them concurrently itself); that step deletes no row;
--   * a later step deletes one batch (purge_range) from the cursor it was handed, with its
--     record in the run (run_record) in the same subtransaction;
--   * p_batch_size NULL: the rule's whole garbage in one DELETE, in the caller's transaction,
--     without the advisory lock (sweep_table: one call, one rule). An orphan rule is left to
--     the batched drivers there: its parent's SHARE lock would last until the caller commits;
--   * any error of the rule (a key expression that fails on one value, an archive that no
--     longer fits, a foreign key that refuses) undoes the step's own work, is recorded in the
--     run with its message, said in a WARNING, and returned: the driver goes on with the next
--     rule. A lock not granted in time (the app holds what the batch needs) is giving way, not
--     an error. A cancel (statement_timeout, pg_cancel_backend) is recorded and returned as
--     'cancelled': the driver ends its run and raises it again.
-- outcome: 'more' (call again with next_cursor and next_size), 'done', 'skipped', 'gave_way',
-- 'failed', 'cancelled'. deleted counts rows deleted row by row (what pacing's row rate
-- counts), removed_whole the rows of the partitions_removed partitions removed whole. next_wal is the next batch's
-- expected WAL (this batch's per row), for the replay budget. blocked: sessions that waited
-- for this batch's locks (asked before the commit). message and error_code (its SQLSTATE):
-- why, when not 'more' or 'done'.
CREATE OR REPLACE FUNCTION pgsweep.sweep_step(
    p_run_id bigint, p_table regclass, p_column name, p_cursor text DEFAULT NULL,
    p_batch_size integer DEFAULT 5000, p_pauses integer DEFAULT 0,
    p_paused_for interval DEFAULT '0', p_whole_partitions boolean DEFAULT true,
    OUT outcome text, OUT deleted bigint, OUT removed_whole bigint, OUT partitions_removed integer,
    OUT next_cursor text,
    OUT next_size integer, OUT next_wal bigint, OUT blocked integer, OUT message text,
    OUT error_code text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rule    pgsweep.expiry_rule;
    v_started timestamptz := clock_timestamp();
    v_lsn     pg_lsn := pg_current_wal_lsn();
    v_batch   record;
    v_dropped record;
    v_from    text;
    v_begins  boolean := p_cursor IS NULL;
    v_wait    interval;
    v_timeout text;  -- the caller's lock_timeout, when the step shortened it
    v_deferred oid[] := '{}'::oid[];
    v_on_dependent boolean := false;
BEGIN
    deleted := 0;
    removed_whole := 0;
    partitions_removed := 0;
    blocked := 0;
    next_size := p_batch_size;
    next_wal := 0;
    IF p_batch_size IS NOT NULL AND p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pgsweep: this server is a standby (in recovery): nothing to sweep here'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run the sweep on the primary; its deletes reach the standby by replication.';
    END IF;
    IF p_batch_size IS NOT NULL
       AND split_part(current_setting('pgsweep.open_run', true), '@', 1) = p_run_id::text THEN
        -- This statement is the open run's now (pgsweep.open_run_mark).
        PERFORM set_config('pgsweep.open_run', pgsweep.open_run_mark(p_run_id), false);
    END IF;
    IF p_batch_size IS NULL THEN
        -- In the caller's transaction (one DELETE): the rule as it is at the call. Locking it
        -- would hold off every change of it until the caller commits, and cost the no-op call
        -- a transaction id.
        SELECT r.* INTO v_rule FROM pgsweep.expiry_rule r
         WHERE r.table_name = p_table AND r.column_name = p_column;
    ELSE
        BEGIN
            v_rule := pgsweep.locked_rule(p_table, p_column);
        EXCEPTION WHEN lock_not_available THEN
            PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, true, 'skipped',
                                           'another session is changing the rule');
            outcome := 'skipped';
            message := 'another session is changing the rule';
            RETURN;
        WHEN insufficient_privilege THEN
            -- locked_rule locks a rule only for a role that may delete from its table: that
            -- rule fails, the run goes on. (In the caller's transaction the rule is read, not
            -- locked, and an error there is the caller's.)
            outcome := 'failed';
            message := SQLERRM;
            error_code := SQLSTATE;
            PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, false, outcome, message);
            RETURN;
        END;
    END IF;
    IF v_rule.table_name IS NULL THEN
        -- Removed since the run began (or since the last step): nothing more to do, nothing to say.
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, p_batch_size IS NOT NULL,
                                       'done', NULL);
        outcome := 'done';
        RETURN;
    END IF;
    message := pgsweep.rule_problem(v_rule);
    IF message IS NULL AND p_batch_size IS NULL AND v_rule.kind = 'orphan' THEN
        message := 'an orphan rule is swept by CALL pgsweep.sweep() or pgsweep cleanup, not in'
                   ' the caller''s transaction (its parent table would stay locked against'
                   ' writers until that transaction ends)';
    END IF;
    IF message IS NULL AND p_batch_size IS NULL AND pgsweep.deferred_keys_possible(v_rule) THEN
        -- Asked once: the keys onto the rule's own table go to its DELETE (purge_rule_leaving).
        SELECT coalesce(bool_or(d.on_dependent), false),
               coalesce(array_agg(d.constraint_oid) FILTER (WHERE NOT d.on_dependent), '{}')
          INTO v_on_dependent, v_deferred
          FROM pgsweep.deferred_references(v_rule) d;
    END IF;
    IF v_on_dependent THEN
        message := 'a deferred foreign key references rows its dependents delete: it is swept by'
                   ' CALL pgsweep.sweep() or pgsweep cleanup, not in the caller''s transaction'
                   ' (the key would be checked at the caller''s COMMIT)';
    END IF;
    IF message IS NULL AND p_batch_size IS NOT NULL
       AND (v_begins OR pgsweep.rule_lock_holder(p_table, p_column) IS DISTINCT FROM pg_backend_pid())
       AND NOT pgsweep.lock_rule(p_table, p_column, pgsweep.setting('lock_wait')::interval) THEN
        message := pgsweep.rule_lock_problem(p_table, p_column);
        outcome := 'skipped';
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, false, outcome, message);
        RETURN;
    END IF;
    IF message IS NOT NULL THEN
        outcome := 'skipped';
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, p_batch_size IS NOT NULL,
                                       outcome, message);
        RETURN;
    END IF;
    -- The rule's work, undone as a whole on any error (one subtransaction per step). Every
    -- statement of it that could wait on a lock the app holds (reading the table or its parent,
    -- not only the DELETE) waits at most pgsweep.lock_wait (or the caller's shorter
    -- lock_timeout): then the rule gives way, 'table locked', and the run goes on.
    -- In the caller's transaction the caller's own lock_timeout is put back after the step
    -- (a SET LOCAL would outlive the call and bound the app's next statements).
    v_wait := greatest(pgsweep.setting('lock_wait')::interval, '1ms');
    v_timeout := current_setting('lock_timeout');
    IF v_timeout = '0' OR v_timeout::interval > v_wait THEN
        PERFORM set_config('lock_timeout', ceil(extract(epoch FROM v_wait) * 1000) || 'ms', true);
    ELSE
        v_timeout := NULL;
    END IF;
    BEGIN
        IF p_batch_size IS NOT NULL THEN
            -- A deferred check (an ORM's DEFERRABLE INITIALLY DEFERRED foreign key, a deferred
            -- constraint trigger) would otherwise fail at the step's COMMIT, outside any
            -- handler: checked here, it fails this rule's step alone. The step is the whole of
            -- its transaction, so no caller's deferred work is checked early.
            SET CONSTRAINTS ALL IMMEDIATE;
        END IF;
        -- Only a partitioned table has partitions to remove: a plain one skips the call (and
        -- the DateStyle and TimeZone its SET clauses cost at every call).
        IF v_begins AND (p_whole_partitions OR p_batch_size IS NULL)
           AND (SELECT c.relkind FROM pg_class c WHERE c.oid = p_table) = 'p' THEN
            SELECT d.partitions, d.rows INTO v_dropped FROM pgsweep.drop_expired_partitions(v_rule) d;
            removed_whole := v_dropped.rows;
            partitions_removed := v_dropped.partitions;
        END IF;
        IF v_begins AND p_batch_size IS NOT NULL THEN
            -- The first step of a batched rule only begins it: the partitions' catalog locks
            -- go with this commit, before any batch.
            IF removed_whole > 0 THEN
                PERFORM pgsweep.run_record(p_run_id, p_table, p_column, removed_whole, 0,
                                           p_since => v_started);
            END IF;
            outcome := 'more';
            next_cursor := '*';
            RETURN;
        END IF;
        IF p_batch_size IS NULL THEN
            -- Never an orphan rule (skipped above): no parent table to hold.
            deleted := pgsweep.purge_rule_leaving(v_rule, v_deferred);
            outcome := 'done';
        ELSIF NOT pgsweep.hold_parents(v_rule) THEN
            outcome := 'gave_way';
            message := format('writers of %s kept it busy', v_rule.parent_table);
        ELSE
            v_from := CASE WHEN p_cursor = '*' THEN NULL ELSE substr(p_cursor, 2) END;
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule, v_from, p_batch_size) b;
            deleted := v_batch.deleted;
            outcome := CASE WHEN v_batch.next_from IS NULL THEN 'done' ELSE 'more' END;
            next_cursor := '>' || v_batch.next_from;
            blocked := pgsweep.sessions_waiting_for_me();
        END IF;
        IF outcome <> 'gave_way' THEN
            PERFORM pgsweep.run_record(
                p_run_id, p_table, p_column, deleted + removed_whole, 1, p_pauses, p_paused_for,
                v_started,
                -- an archiving rule's rows moved to its archive as they were deleted
                p_archived => CASE WHEN v_rule.archive_to IS NOT NULL THEN deleted ELSE 0 END);
        END IF;
    EXCEPTION
        WHEN lock_not_available THEN
            outcome := 'gave_way';
            message := CASE WHEN SQLERRM = 'canceling statement due to lock timeout'
                            THEN 'table locked: a lock the step needed was not granted in time'
                                 ' (pgsweep.lock_wait)'
                            ELSE SQLERRM END;
        WHEN query_canceled THEN
            outcome := 'cancelled';
            message := SQLERRM;
            error_code := SQLSTATE;
        WHEN OTHERS THEN
            outcome := 'failed';
            message := SQLERRM;
            error_code := SQLSTATE;
    END;
    IF v_timeout IS NOT NULL AND p_batch_size IS NULL THEN
        PERFORM set_config('lock_timeout', v_timeout, true);
    END IF;
    IF outcome IN ('gave_way', 'cancelled', 'failed') THEN
        deleted := 0;
        removed_whole := 0;
        partitions_removed := 0;
        next_cursor := NULL;
    END IF;
    IF outcome = 'more' THEN
        next_size := pgsweep.next_batch_size(p_batch_size, clock_timestamp() - v_started, blocked);
        next_wal := (pg_wal_lsn_diff(pg_current_wal_lsn(), v_lsn)::bigint
                     / greatest(deleted, 1)) * next_size;
        RETURN;
    END IF;
    -- A rule done in the caller's transaction has nothing to say, record or release.
    IF outcome <> 'done' OR message IS NOT NULL OR p_batch_size IS NOT NULL THEN
        PERFORM pgsweep.sweep_step_end(p_run_id, p_table, p_column, p_batch_size IS NOT NULL,
                                       outcome, message);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_step(bigint, regclass, name, text, integer, integer, interval, boolean) IS
    'One step of a sweep of one rule: begin it, or delete its next batch; every driver repeats it';

-- ---- functions/sweep_step_end.sql ----------------------------------------
-- The end of a rule's part in a run, whatever ended it (pgsweep.sweep_step): said to the caller
-- (a WARNING for a rule skipped or failed, a NOTICE when it gave way), recorded in the run when
-- it did not finish ('skipped: ', 'failed: ', 'gave way: ' and the reason, so that status and
-- health name it), and the rule's advisory lock released when this session holds it (p_locked:
-- a batched run; sweep_table takes none), so that no outcome leaves the rule to this session.
CREATE OR REPLACE FUNCTION pgsweep.sweep_step_end(
    p_run_id bigint, p_table regclass, p_column name, p_locked boolean, p_outcome text,
    p_message text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_outcome IN ('skipped', 'failed') THEN
        RAISE WARNING 'pgsweep: rule %.% %: %', p_table, p_column, p_outcome, p_message;
    ELSIF p_outcome = 'gave_way' THEN
        RAISE NOTICE 'pgsweep: rule %.% gave way (the rest is left for the next run): %',
            p_table, p_column, p_message;
    ELSIF p_outcome = 'cancelled' THEN
        RAISE WARNING 'pgsweep: rule %.% cancelled: %', p_table, p_column, p_message;
    END IF;
    IF p_outcome <> 'done' AND p_message IS NOT NULL AND p_run_id IS NOT NULL THEN
        PERFORM pgsweep.run_record(p_run_id, p_table, p_column, 0, 0,
            p_error => CASE WHEN p_outcome = 'failed' THEN p_message
                            ELSE replace(p_outcome, '_', ' ') || ': ' || p_message END);
    END IF;
    IF p_locked AND pgsweep.rule_lock_holder(p_table, p_column) = pg_backend_pid() THEN
        PERFORM pgsweep.unlock_rule(p_table, p_column);
    END IF;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_step_end(bigint, regclass, name, boolean, text, text) IS
    'Say, record and release the end of a rule''s part in a run (pgsweep.sweep_step)';

-- ---- functions/sweep_table.sql ----------------------------------------
-- All rules of one table, in the caller's transaction, one DELETE per rule (pgsweep.sweep_step
-- with no batch size), in pgsweep.run_order. A table without rules is an error, never a silent
-- "0 rows". A rule that cannot run is skipped with a warning; an orphan rule is left to the
-- batched sweep (its parent's lock would last until the caller commits); a rule that fails is
-- undone alone, said in a WARNING and recorded, and the other rules are still swept: the total
-- is of the rules that ran. A cancel is raised again. p_batch_size is checked and otherwise
-- unused (each rule is one DELETE); it stays so that callers of the embedded engine keep
-- working. The run is recorded in the caller's transaction ('function'; pgsweep.run): it
-- commits with the deletes, or vanishes with them when the caller rolls back.
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total    bigint := 0;
    v_rule     record;
    v_step     record;
    v_run_id   bigint;
    v_failures text[] := '{}'::text[];
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT FROM pgsweep.expiry_rule r WHERE r.table_name = p_table) THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    v_run_id := pgsweep.run_begin('function', false);
    FOR v_rule IN SELECT o.table_name, o.column_name FROM pgsweep.run_order(p_table) o LOOP
        -- An assignment, not SELECT ... FROM: no function scan to set up per rule.
        v_step := pgsweep.sweep_step(v_run_id, v_rule.table_name, v_rule.column_name, NULL, NULL);
        IF v_step.outcome = 'cancelled' THEN
            RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = v_step.message;
        ELSIF v_step.outcome = 'failed' THEN
            v_failures := v_failures || format('%s (%s): %s', v_rule.table_name,
                                               v_rule.column_name, v_step.message);
        END IF;
        v_total := v_total + v_step.deleted + v_step.removed_whole;
    END LOOP;
    IF cardinality(v_failures) > 0 THEN
        PERFORM pgsweep.run_end(v_run_id, 'failed', format('%s rule(s) failed: %s',
            cardinality(v_failures), array_to_string(v_failures, '; ')));
    ELSE
        PERFORM pgsweep.run_end(v_run_id, 'succeeded');
    END IF;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';

-- ---- functions/table_key.sql ----------------------------------------
-- How run history names a table: schema-qualified whatever the caller's search_path (regclass
-- output under the pinned path), so one table has one name in pgsweep.run_rule, rule_counter and
-- rule_status, and the name stays readable after the table is dropped.
CREATE OR REPLACE FUNCTION pgsweep.table_key(p_table regclass)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: a SQL function with a SET clause is planned again at every call, and every
-- batch's record asks.
AS $$
BEGIN
    RETURN p_table::text;
END $$;
COMMENT ON FUNCTION pgsweep.table_key(regclass) IS
    'A table''s name in run history: schema-qualified, independent of the caller''s search_path';

-- ---- functions/unindexed_statement.sql ----------------------------------------
-- Whether the plan of p_statement reads some table without an index condition (a sequential
-- scan, or an index walked end to end) even when sequential scans are off: then no index can
-- serve it. Planned, never executed.
CREATE OR REPLACE FUNCTION pgsweep.unindexed_statement(p_statement text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
    v_plan jsonb;
BEGIN
    /* Statements built by the engine from quoted parts.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE 'EXPLAIN (FORMAT JSON) ' || p_statement INTO v_plan;
    RETURN jsonb_path_exists(v_plan,
        '$.** ? (@."Node Type" == "Seq Scan" || ((@."Node Type" == "Index Scan"'
        ' || @."Node Type" == "Index Only Scan" || @."Node Type" == "Bitmap Index Scan")'
        ' && !exists(@."Index Cond")))');
END $$;
COMMENT ON FUNCTION pgsweep.unindexed_statement(text) IS
    'True when no index can serve a statement (a table scanned without an index condition)';

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

-- ---- functions/wall_clock_cutoff.sql ----------------------------------------
-- The cutoff of a timestamp column whose values are wall-clock times in p_zone: the earliest
-- wall-clock time that may stand for an instant at or after p_instant, so that
-- "column < wall_clock_cutoff(...)" takes a row only when every reading of its value is before
-- p_instant, and stays a plain comparison an index can serve. A value has two readings around a
-- daylight-saving change: in the repeated hour of a fall-back, and in the skipped hour of a
-- spring-forward (a time that never happened could have meant either offset). PostgreSQL's own
-- reading ("value AT TIME ZONE zone", instant_expression) is the later of the two in either case,
-- so this is the smallest wall-clock time that PostgreSQL reads as p_instant or later. It is
-- p_instant's own wall-clock time, or an earlier one when a change is near: p_instant plus the
-- offset in force before or after the change, or the wall-clock time at which the change ends
-- (the start of a repeated hour). A wall-clock time after a skipped hour whose reading is before
-- p_instant may still be kept (the rows of the skipped hour before it may be live): it goes at
-- most the length of the skipped hour later, never early.
CREATE OR REPLACE FUNCTION pgsweep.wall_clock_cutoff(p_instant timestamptz, p_zone text)
RETURNS timestamp
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    -- Wider than any daylight-saving shift tzdata knows (at most 2 hours).
    v_reach      constant interval := interval '3 hours';
    v_utc        constant timestamp := p_instant AT TIME ZONE 'UTC';
    v_candidates timestamp[];
    v_candidate  timestamp;
    v_best       timestamp := p_instant AT TIME ZONE p_zone;
    v_lo         timestamptz;
    v_hi         timestamptz;
    v_mid        timestamptz;
BEGIN
    -- p_instant plus the offset in force at either edge of the reach.
    v_candidates := ARRAY[
        v_utc + (((p_instant - v_reach) AT TIME ZONE p_zone) - ((p_instant - v_reach) AT TIME ZONE 'UTC')),
        v_utc + (((p_instant + v_reach) AT TIME ZONE p_zone) - ((p_instant + v_reach) AT TIME ZONE 'UTC'))];
    -- Where the offset changes on either side of p_instant, the wall-clock time the change ends
    -- at: its first whole second (tzdata changes fall on whole seconds), found by bisection.
    FOR v_half IN 0..1 LOOP
        v_lo := to_timestamp(floor(extract(epoch FROM p_instant - (1 - v_half) * v_reach)));
        v_hi := to_timestamp(ceil(extract(epoch FROM p_instant + v_half * v_reach)));
        CONTINUE WHEN (v_lo AT TIME ZONE p_zone) - (v_lo AT TIME ZONE 'UTC')
                    = (v_hi AT TIME ZONE p_zone) - (v_hi AT TIME ZONE 'UTC');
        WHILE v_hi - v_lo > interval '1 second' LOOP
            v_mid := to_timestamp(floor(extract(epoch FROM v_lo)
                                        + extract(epoch FROM v_hi - v_lo) / 2));
            IF (v_mid AT TIME ZONE p_zone) - (v_mid AT TIME ZONE 'UTC')
             = (v_lo AT TIME ZONE p_zone) - (v_lo AT TIME ZONE 'UTC') THEN
                v_lo := v_mid;
            ELSE
                v_hi := v_mid;
            END IF;
        END LOOP;
        v_candidates := v_candidates || (v_hi AT TIME ZONE p_zone);
    END LOOP;
    FOREACH v_candidate IN ARRAY v_candidates LOOP
        IF v_candidate < v_best AND (v_candidate AT TIME ZONE p_zone) >= p_instant THEN
            v_best := v_candidate;
        END IF;
    END LOOP;
    RETURN v_best;
END $$;
COMMENT ON FUNCTION pgsweep.wall_clock_cutoff(timestamptz, text) IS
    'The earliest wall-clock time in a zone that may stand for the instant or later (cutoffs)';

-- ---- procedures/sweep.sql ----------------------------------------
-- Every rule of every table (or of p_table), each step its own transaction, so no lock is held
-- longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- The rules come in pgsweep.run_order (an orphan rule after its parent's rules); each is worked
-- by repeating pgsweep.sweep_step, which takes every decision about its rows (the rule re-read
-- per step, its lock, its partitions, its batch, its record, its errors): this procedure only
-- commits, paces and ends the run. A rule that cannot run, is held by another run, gives way
-- or fails is said (WARNING/NOTICE), recorded with its reason, and the run goes on with the
-- next rule; the run then ends 'failed' with the failures named (nothing is raised: every
-- other rule's work is done and committed). Paced (pgsweep.pace, docs/scheduling.md "Pacing"):
-- the batch size follows pgsweep.batch_target from p_batch_size on, and between batches the
-- run pauses while a budget is exceeded, each pause said in a NOTICE with its reason and
-- recorded, or stops at pgsweep.max_run_time: the run ends 'stopped' and the rules it did not
-- finish are recorded as left for the next run. Rows of partitions removed whole do not count
-- against pgsweep.max_rows_per_second. A standby is refused before anything is read.
-- A cancel (statement_timeout, pg_cancel_backend), in a step or in a pause, releases the rule's
-- lock and closes the run ('failed', with the cancel's message), commits that, and is raised
-- again: nothing is left to this session. One elsewhere (just after a COMMIT: no handler may
-- enclose a COMMIT) leaves the run open and its rule locked; the session's next run_begin
-- closes that run ('interrupted') and releases the lock (pgsweep.close_own_leftovers). The
-- run's close is committed before the ANALYZE at its end (pgsweep.analyze_swept).
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
    v_rule  record;
    v_step  record;
    v_pace  record;
    v_cursor text;
    v_size  integer;
    v_rule_total bigint;
    v_rule_whole bigint;
    v_rule_partitions integer;
    v_row_deleted bigint := 0;
    v_started timestamptz := pg_catalog.clock_timestamp();
    v_wal_start pg_catalog.pg_lsn;
    v_reason text;
    v_slept_from timestamptz;
    v_stopped text;
    v_run_id bigint;
    v_pauses integer := 0;
    v_paused_for interval := '0'::pg_catalog.interval;
    v_pauses_recorded integer := 0;
    v_paused_for_recorded interval := '0'::pg_catalog.interval;
    v_failures text[] := '{}'::text[];
    v_cancel text;
    v_cancel_closed boolean := false;  -- the cancelled step closed its rule itself
    v_began boolean;
    v_status text := 'succeeded';
    v_error text;
    v_analyze regclass[];
    v_analyze_rows numeric[];
BEGIN
    deleted := 0;
    IF p_batch_size IS NULL OR p_batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION 'pgsweep: this server is a standby (in recovery): nothing to sweep here'
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'Run the sweep on the primary; its deletes reach the standby by replication.';
    END IF;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT EXISTS (
            SELECT FROM pgsweep.expiry_rule r WHERE r.table_name OPERATOR(pg_catalog.=) p_table) THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    v_run_id := pgsweep.run_begin('procedure');
    COMMIT;
    v_wal_start := pg_catalog.pg_current_wal_lsn();
    <<rules>>
    FOR v_rule IN SELECT o.table_name, o.column_name FROM pgsweep.run_order(p_table) o LOOP
        IF v_stopped IS NOT NULL THEN
            PERFORM pgsweep.run_record(v_run_id, v_rule.table_name, v_rule.column_name, 0, 0,
                p_error => 'left for the next run: ' OPERATOR(pg_catalog.||) v_stopped);
            COMMIT;
            CONTINUE;
        END IF;
        v_cursor := NULL;
        v_size := p_batch_size;
        v_rule_total := 0;
        v_rule_whole := 0;
        v_rule_partitions := 0;
        LOOP
            BEGIN
                SELECT s.* INTO v_step
                  FROM pgsweep.sweep_step(
                           v_run_id, v_rule.table_name, v_rule.column_name, v_cursor, v_size,
                           v_pauses OPERATOR(pg_catalog.-) v_pauses_recorded,
                           v_paused_for OPERATOR(pg_catalog.-) v_paused_for_recorded) s;
            EXCEPTION WHEN query_canceled THEN
                v_cancel := SQLERRM;
            END;
            EXIT rules WHEN v_cancel IS NOT NULL;
            IF v_step.outcome OPERATOR(pg_catalog.=) 'cancelled' THEN
                v_cancel := v_step.message;
                v_cancel_closed := true;
                EXIT rules;
            END IF;
            IF v_step.outcome OPERATOR(pg_catalog.<>) 'skipped' AND v_cursor IS NOT NULL THEN
                v_pauses_recorded := v_pauses;
                v_paused_for_recorded := v_paused_for;
            END IF;
            COMMIT;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_step.deleted
                            OPERATOR(pg_catalog.+) v_step.removed_whole;
            v_rule_whole := v_rule_whole OPERATOR(pg_catalog.+) v_step.removed_whole;
            v_rule_partitions := v_rule_partitions OPERATOR(pg_catalog.+) v_step.partitions_removed;
            v_row_deleted := v_row_deleted OPERATOR(pg_catalog.+) v_step.deleted;
            IF v_step.outcome OPERATOR(pg_catalog.=) 'failed' THEN
                v_failures := v_failures OPERATOR(pg_catalog.||) pg_catalog.format(
                    '%s (%s): %s', v_rule.table_name, v_rule.column_name, v_step.message);
            END IF;
            EXIT WHEN v_step.outcome OPERATOR(pg_catalog.<>) 'more';
            -- Paced between batches only (not after the step that began the rule, which deleted
            -- no row): a rule once begun gets at least one batch per run.
            v_began := v_cursor IS NULL;
            v_cursor := v_step.next_cursor;
            v_size := v_step.next_size;
            CONTINUE WHEN v_began;
            -- Between batches: pace. A cancel while pausing ends the run like one in a step.
            v_reason := NULL;
            BEGIN
                LOOP
                    SELECT p.wait, p.reason, p.stop INTO v_pace
                      FROM pgsweep.pace(v_rule.table_name, v_started, v_row_deleted, v_wal_start,
                                        v_step.blocked, v_step.next_wal) AS p;
                    IF v_pace.stop THEN
                        RAISE NOTICE 'pgsweep: stopping % (%): %; the rest is left for the next run',
                            v_rule.table_name, v_rule.column_name, v_pace.reason;
                        v_stopped := v_pace.reason;
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
                    v_paused_for := v_paused_for OPERATOR(pg_catalog.+)
                        (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) v_slept_from);
                    v_step.blocked := 0;
                END LOOP;
                IF v_stopped IS NULL AND p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                    PERFORM pg_catalog.pg_sleep_for(p_pause);
                    v_pauses := v_pauses OPERATOR(pg_catalog.+) 1;
                    v_paused_for := v_paused_for OPERATOR(pg_catalog.+) p_pause;
                END IF;
            EXCEPTION WHEN query_canceled THEN
                v_cancel := SQLERRM;
            END;
            EXIT rules WHEN v_cancel IS NOT NULL;
            -- No snapshot held from one pause to the next batch (vacuum's horizon moves on).
            COMMIT;
            IF v_stopped IS NOT NULL THEN
                PERFORM pgsweep.sweep_step_end(v_run_id, v_rule.table_name, v_rule.column_name,
                    true, 'stopped', 'left for the next run: ' OPERATOR(pg_catalog.||) v_stopped);
                COMMIT;
                EXIT;
            END IF;
        END LOOP;
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name,
            v_rule.column_name;
        IF v_rule_partitions OPERATOR(pg_catalog.>) 0 THEN
            RAISE NOTICE 'pgsweep: of them, % rows in % partitions removed whole', v_rule_whole,
                v_rule_partitions;
        END IF;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    IF v_cancel IS NOT NULL THEN
        -- Whatever the step had not closed itself (a cancel while pausing): the rule's lock,
        -- its record; then the run, committed before the cancel goes on to the caller.
        PERFORM pgsweep.sweep_step_end(v_run_id, v_rule.table_name, v_rule.column_name, true,
            'cancelled', v_cancel)
          WHERE NOT v_cancel_closed;
        PERFORM pgsweep.run_close(v_run_id, 'failed',
            pg_catalog.format('cancelled at %s (%s): %s', v_rule.table_name,
                              v_rule.column_name, v_cancel));
        PERFORM pg_catalog.set_config('pgsweep.open_run', '', false);
        COMMIT;
        RAISE EXCEPTION USING ERRCODE = 'query_canceled', MESSAGE = v_cancel,
            HINT = 'Every batch before it is committed and recorded; running the sweep again is safe.';
    END IF;
    IF v_pauses OPERATOR(pg_catalog.>) 0 THEN
        RAISE NOTICE 'pgsweep: paused % time(s), % in all', v_pauses,
            pg_catalog.date_trunc('millisecond', v_paused_for);
    END IF;
    IF pg_catalog.cardinality(v_failures) OPERATOR(pg_catalog.>) 0 THEN
        RAISE WARNING 'pgsweep: % rule(s) failed, the others were swept: %',
            pg_catalog.cardinality(v_failures), pg_catalog.array_to_string(v_failures, '; ');
        v_status := 'failed';
        v_error := pg_catalog.format('%s rule(s) failed: %s',
            pg_catalog.cardinality(v_failures), pg_catalog.array_to_string(v_failures, '; '));
    ELSIF v_stopped IS NOT NULL THEN
        v_status := 'stopped';
        v_error := v_stopped;
    END IF;
    -- The run's close is committed before any ANALYZE: a cancel during one (or just after this
    -- COMMIT) leaves the run closed and no lock behind (pgsweep.run_end does both in one).
    SELECT pg_catalog.array_agg(c.table_name), pg_catalog.array_agg(c.rows_deleted)
      INTO v_analyze, v_analyze_rows
      FROM pgsweep.run_close(v_run_id, v_status, v_error) c;
    PERFORM pg_catalog.set_config('pgsweep.open_run', '', false);
    COMMIT;
    IF v_analyze IS NOT NULL THEN
        PERFORM pgsweep.analyze_swept(v_analyze, v_analyze_rows);
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, paced, one short transaction per step (pgsweep.sweep_step), recorded in pgsweep.run; CALL outside a transaction block';

-- ---- views/dependents.sql ----------------------------------------
-- Every dependent of every rule, and whether its foreign key is still there (problem NULL: it
-- is acted on; a dropped key or table is nothing to act on, and the rule runs without it).
CREATE OR REPLACE VIEW pgsweep.dependents AS
SELECT d.table_name::text AS table_name,
       d.column_name,
       d.referencing_table::text AS referencing_table,
       d.constraint_name,
       d.action,
       c.confrelid::regclass::text AS referenced_table,
       c.condeferred AS deferred,
       CASE WHEN c.oid IS NULL THEN 'the foreign key no longer exists' END AS problem
  FROM pgsweep.rule_dependent d
  LEFT JOIN pg_catalog.pg_constraint c
         ON c.conrelid = d.referencing_table AND c.conname = d.constraint_name
        AND c.contype = 'f' AND c.conparentid = 0;
COMMENT ON VIEW pgsweep.dependents IS
    'Per rule, what its delete does to the rows referencing its garbage, per foreign key';

-- ---- views/rows_deleted_per_day.sql ----------------------------------------
-- Rows deleted per day (UTC) and rule, every way they went: runs of each kind and the insert
-- trigger (folded, plus its sweeps not folded yet), as TimescaleDB's job_stats sums a job.
CREATE OR REPLACE VIEW pgsweep.rows_deleted_per_day AS
SELECT d.day, d.table_name, d.column_name, d.invoked_by,
       count(DISTINCT d.run_id) AS runs, sum(d.rows_deleted)::bigint AS rows_deleted,
       sum(d.rows_archived)::bigint AS rows_archived, sum(d.batches)::bigint AS batches
  FROM (SELECT (rr.started_at AT TIME ZONE 'UTC')::date AS day, rr.table_name, rr.column_name,
               r.invoked_by, rr.run_id, rr.rows_deleted, rr.rows_archived, rr.batches
          FROM pgsweep.run_rule rr JOIN pgsweep.run r ON r.run_id = rr.run_id
        UNION ALL
        SELECT (t.swept_at AT TIME ZONE 'UTC')::date, t.table_name, t.column_name, 'trigger',
               NULL, t.rows_deleted, 0, 1
          FROM pgsweep.trigger_sweep t) d
 GROUP BY d.day, d.table_name, d.column_name, d.invoked_by;
COMMENT ON VIEW pgsweep.rows_deleted_per_day IS
    'Rows deleted per UTC day, rule and way of running (trigger sweeps included)';

-- ---- views/rule_counters.sql ----------------------------------------
-- The totals of every rule since the engine was installed, whatever the history's retention:
-- the runs pruned (pgsweep.rule_counter), the runs kept (pgsweep.run_rule), the in-transaction
-- runs that deleted nothing (pgsweep.idle_run) and the insert trigger's sweeps not folded yet.
-- What Prometheus counters read: they only grow. A failure is a rule a run skipped or failed
-- on, or a rule of a run that failed (unless the run's failure is another rule's) or was
-- interrupted; a rule a 'stopped' run cut is a run, neither a failure nor a success (its
-- last_success_at does not move), and every rule that run finished before it succeeded.
CREATE OR REPLACE VIEW pgsweep.rule_counters AS
SELECT t.table_name, t.column_name,
       sum(t.rows_deleted)::bigint AS rows_deleted_total,
       sum(t.rows_archived)::bigint AS rows_archived_total,
       sum(t.runs)::bigint AS runs_total,
       sum(t.failures)::bigint AS failures_total,
       max(t.last_success_at) AS last_success_at
  FROM (SELECT c.table_name, c.column_name, c.rows_deleted_total AS rows_deleted,
               c.rows_archived_total AS rows_archived, c.runs_total AS runs,
               c.failures_total AS failures, c.last_success_at
          FROM pgsweep.rule_counter c
        UNION ALL
        SELECT rr.table_name, rr.column_name, rr.rows_deleted, rr.rows_archived,
               CASE WHEN r.status <> 'running' THEN 1 ELSE 0 END,
               CASE WHEN rr.error IS NOT NULL OR o.outcome IN ('failed', 'interrupted')
                    THEN 1 ELSE 0 END,
               CASE WHEN rr.error IS NULL AND o.outcome = 'succeeded' THEN rr.ended_at END
          FROM pgsweep.run_rule rr JOIN pgsweep.run r ON r.run_id = rr.run_id
         CROSS JOIN LATERAL (
                SELECT CASE WHEN rr.error IS NULL AND r.status = 'failed'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule f
                                              WHERE f.run_id = rr.run_id AND f.error IS NOT NULL
                                                AND f.error NOT LIKE 'skipped: %')
                            THEN 'succeeded'
                            WHEN rr.error IS NULL AND r.status = 'stopped'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule l
                                              WHERE l.run_id = rr.run_id AND l.error IS NULL
                                                AND (l.started_at, l.table_name, l.column_name)
                                                    > (rr.started_at, rr.table_name, rr.column_name))
                            THEN 'succeeded'
                            ELSE r.status END AS outcome) o
        UNION ALL
        SELECT u.table_name, u.column_name, 0, 0, 1, 0, i.ended_at
          FROM pgsweep.idle_run i
         CROSS JOIN LATERAL unnest(i.table_names, i.column_names) AS u(table_name, column_name)
        UNION ALL
        SELECT s.table_name, s.column_name, s.rows_deleted, 0, 0, 0, s.swept_at
          FROM pgsweep.trigger_sweep s) t
 GROUP BY t.table_name, t.column_name;
COMMENT ON VIEW pgsweep.rule_counters IS
    'Per rule totals since install (monotonic): pruned runs, kept history, idle runs, unfolded trigger sweeps';

-- ---- views/rule_last_run.sql ----------------------------------------
-- The last run of every rule that has one (the insert trigger's daily aggregate aside), and how
-- it went for that rule: what pg_cron's job_run_details cannot say (it keeps "CALL").
-- run_status is the rule's outcome in that run: the run's status (a dead 'running' run shows
-- 'interrupted'), except 'succeeded' for a rule without error in a run that failed on other
-- rules, and for every rule a 'stopped' run finished (the last one it worked, cut by the time
-- budget, is 'stopped'). error is the rule's own, or the run's where the run's failure is the
-- rule's. An in-transaction run that deleted nothing (pgsweep.idle_run, each rule's newest is
-- kept there) counts as a run that succeeded with nothing to do.
CREATE OR REPLACE VIEW pgsweep.rule_last_run AS
SELECT DISTINCT ON (l.table_name, l.column_name) l.*
  FROM (
SELECT rr.table_name, rr.column_name, rr.run_id, r.invoked_by, r.role_name,
       rr.started_at, rr.ended_at, o.outcome AS run_status,
       coalesce(rr.error, CASE WHEN o.outcome IN ('failed', 'interrupted') THEN r.error END)
           AS error,
       rr.rows_deleted, rr.rows_archived, rr.batches, rr.pauses, rr.paused_for
  FROM pgsweep.run_rule rr
  JOIN pgsweep.run r ON r.run_id = rr.run_id,
       LATERAL (SELECT CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
                THEN 'interrupted' ELSE r.status END AS status) s,
       LATERAL (SELECT CASE WHEN rr.error IS NULL AND s.status = 'failed'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule f
                                              WHERE f.run_id = rr.run_id AND f.error IS NOT NULL
                                                AND f.error NOT LIKE 'skipped: %')
                            THEN 'succeeded'
                            WHEN rr.error IS NULL AND s.status = 'stopped'
                                 AND EXISTS (SELECT FROM pgsweep.run_rule l
                                              WHERE l.run_id = rr.run_id AND l.error IS NULL
                                                AND (l.started_at, l.table_name, l.column_name)
                                                    > (rr.started_at, rr.table_name, rr.column_name))
                            THEN 'succeeded'
                            ELSE s.status END AS outcome) o
 WHERE r.invoked_by <> 'trigger'
UNION ALL
SELECT u.table_name, u.column_name, i.run_id, i.invoked_by, i.role_name, i.started_at,
       i.ended_at, 'succeeded', NULL, 0, 0, u.batches, 0, '0'::interval
  FROM pgsweep.idle_run i
 CROSS JOIN LATERAL unnest(i.table_names, i.column_names, i.batches)
           AS u(table_name, column_name, batches)) l
 ORDER BY l.table_name, l.column_name, l.started_at DESC, l.run_id DESC;
COMMENT ON VIEW pgsweep.rule_last_run IS
    'The last recorded run of each rule (trigger sweeps aside) with its outcome for the rule, counts and error';

-- ---- views/rule_status.sql ----------------------------------------
-- One row per rule: what it leaves, what waits, how far behind the cleanup is, what the history
-- says, and the table's size and vacuum state (docs/observability.md). garbage, expiry_lag and
-- oldest_row_age are exact (a condition or orphan rule's lag: how long it has had garbage at
-- most, see below) and cost what the garbage costs (pgsweep.rule_figures: the rule's
-- index); rows_never_expire and rows_alive are exact up to exact_count_limit() rows and the
-- planner's estimates above it (counts_estimated). delete_rate is rows per second of sweeping
-- this rule, from the last 24 hours of runs (pauses included, the insert trigger's sweeps
-- not); backlog_eta is the garbage at that rate. Everything past the first columns is history
-- and statistics, read from catalogs and pgsweep's tables.
CREATE OR REPLACE VIEW pgsweep.rule_status AS
SELECT k.table_name,
       r.column_name,
       p.problem,
       f.rows_never_expire,
       greatest(f.rows_total - f.rows_never_expire - f.garbage, 0) AS rows_alive,
       f.garbage,
       g.expiry_lag,
       now() - f.oldest_row_at AS oldest_row_age,
       coalesce(r.lag_target, pgsweep.default_lag_target()) AS lag_target,
       lr.started_at AS last_run_at,
       c.last_success_at,
       le.error AS last_error,
       d.deleted_24h,
       d.delete_rate,
       CASE WHEN f.garbage = 0 THEN '0'::interval
            WHEN d.delete_rate > 0 THEN make_interval(secs => f.garbage / d.delete_rate)
       END AS backlog_eta,
       sz.table_bytes,
       sz.index_bytes,
       s.n_dead_tup AS dead_tuples,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       g.expiry_lag <= coalesce(r.lag_target, pgsweep.default_lag_target()) AS lag_ok,
       f.rows_total,
       f.estimated AS counts_estimated,
       CASE WHEN f.garbage > 0 THEN f.cutoff_at - f.newest_garbage_at END AS newest_garbage_lag,
       lr.run_status AS last_run_status,
       le.at AS last_error_at,
       s.n_live_tup AS live_tuples
  FROM pgsweep.expiry_rule r
 CROSS JOIN LATERAL (SELECT pgsweep.table_key(r.table_name) AS table_name) k
 CROSS JOIN LATERAL (SELECT pgsweep.rule_problem(r) AS problem) p
 CROSS JOIN LATERAL pgsweep.rule_figures(r) f
 -- A partitioned table's size is its partitions' (pg_partition_tree lists no plain table).
 CROSS JOIN LATERAL (
        SELECT coalesce(sum(pg_table_size(t.relid)), pg_table_size(r.table_name)) AS table_bytes,
               coalesce(sum(pg_indexes_size(t.relid)), pg_indexes_size(r.table_name)) AS index_bytes
          FROM pg_partition_tree(r.table_name) t WHERE t.isleaf) sz
  LEFT JOIN pgsweep.rule_last_run lr
         ON lr.table_name = k.table_name AND lr.column_name = r.column_name
  LEFT JOIN pgsweep.rule_counters c
         ON c.table_name = k.table_name AND c.column_name = r.column_name
  -- How far behind: an age rule by its oldest garbage row's instant; a condition or orphan rule
  -- (no instant) by how long it has had garbage at most: since a finished run last left it
  -- clean, or since it was registered. NULL when the rule cannot run.
  CROSS JOIN LATERAL (
        SELECT CASE WHEN p.problem IS NOT NULL THEN NULL
                    WHEN f.garbage = 0 THEN '0'::interval
                    WHEN r.kind = 'age'
                        THEN greatest(f.cutoff_at - f.oldest_garbage_at, '0'::interval)
                    ELSE greatest(now() - greatest(c.last_success_at, r.registered_at),
                                  '0'::interval)
               END AS expiry_lag) g
  -- The error of the rule's last run only: a run that went well after a failure clears it.
  LEFT JOIN LATERAL (
        SELECT lr.error, lr.ended_at AS at WHERE lr.error IS NOT NULL) le ON true
  LEFT JOIN LATERAL (
        SELECT (coalesce(sum(rr.rows_deleted), 0)
                + coalesce((SELECT sum(t.rows_deleted) FROM pgsweep.trigger_sweep t
                             WHERE t.table_name = k.table_name AND t.column_name = r.column_name
                               AND t.swept_at >= now() - interval '24 hours'), 0))::bigint
                   AS deleted_24h,
               (sum(rr.rows_deleted) FILTER (WHERE ru.invoked_by <> 'trigger')
                / nullif(extract(epoch FROM sum(rr.ended_at - rr.started_at)
                                 FILTER (WHERE ru.invoked_by <> 'trigger'
                                           AND rr.rows_deleted > 0)), 0))::double precision
                   AS delete_rate
          FROM pgsweep.run_rule rr JOIN pgsweep.run ru ON ru.run_id = rr.run_id
         WHERE rr.table_name = k.table_name AND rr.column_name = r.column_name
           AND rr.started_at > now() - interval '48 hours'
           AND rr.ended_at >= now() - interval '24 hours') d ON true
  LEFT JOIN pg_stat_all_tables s ON s.relid = r.table_name;
COMMENT ON VIEW pgsweep.rule_status IS
    'Per rule: garbage and lag (exact), rows alive and never expiring (estimates above exact_count_limit()), history, size, vacuum';
COMMENT ON COLUMN pgsweep.rule_status.rows_alive IS
    'Rows not garbage whose column is set; exact up to exact_count_limit() rows, else an estimate (counts_estimated)';
COMMENT ON COLUMN pgsweep.rule_status.rows_never_expire IS
    'Rows whose column is NULL; exact up to exact_count_limit() rows, else reltuples x pg_stats.null_frac (counts_estimated)';
COMMENT ON COLUMN pgsweep.rule_status.garbage IS
    'Rows this rule marks as garbage now (exact, counted through the rule''s index)';
COMMENT ON COLUMN pgsweep.rule_status.expiry_lag IS
    'How long ago the oldest garbage row crossed the cutoff (0: no garbage); exact';
COMMENT ON COLUMN pgsweep.rule_status.delete_rate IS
    'Rows per second of this rule''s sweeping in the last 24 h of runs (NULL: nothing deleted)';
COMMENT ON COLUMN pgsweep.rule_status.backlog_eta IS
    'garbage / delete_rate: the sweeping time the backlog needs (NULL: no rate measured yet)';
COMMENT ON COLUMN pgsweep.rule_status.dead_tuples IS
    'pg_stat_all_tables.n_dead_tup: dead rows vacuum has not reclaimed yet (an estimate)';

-- ---- views/rules.sql ----------------------------------------
-- Every rule, with what an operator asks first: the column's type, the zone its values are in,
-- and why the rule cannot run, if it cannot (NULL: it runs); since 1.1 (appended) its kind, epoch
-- unit, condition and, for orphans, its parent; since 1.2 (appended) the column type it was
-- registered for. The pgsweep command reads this.
CREATE OR REPLACE VIEW pgsweep.rules AS
SELECT r.table_name::text AS table_name,
       r.column_name,
       r.keep_for,
       r.value_zone,
       a.atttypid::regtype AS column_type,
       pgsweep.rule_problem(r) AS problem,
       r.kind,
       r.epoch_unit,
       r.condition,
       r.parent_table::text AS parent_table,
       r.parent_key,
       r.child_key,
       r.archive_to::text AS archive_to,
       r.registered_type
  FROM pgsweep.expiry_rule r
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = r.table_name AND a.attname = r.column_name
        AND a.attnum > 0 AND NOT a.attisdropped;
COMMENT ON VIEW pgsweep.rules IS
    'Expiry rules with their column type, value zone and problem (NULL: the rule runs)';

-- ---- views/run_failures.sql ----------------------------------------
-- Runs that did not succeed, and rules a run skipped or failed on (column_name NULL: the run as
-- a whole), newest first.
CREATE OR REPLACE VIEW pgsweep.run_failures AS
SELECT r.run_id, rr.table_name, rr.column_name, r.invoked_by, r.role_name, r.started_at,
       r.ended_at, s.status, coalesce(rr.error, r.error) AS error
  FROM pgsweep.run r
  CROSS JOIN LATERAL (SELECT CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
                THEN 'interrupted' ELSE r.status END AS status) s
  LEFT JOIN pgsweep.run_rule rr ON rr.run_id = r.run_id AND rr.error IS NOT NULL
 WHERE s.status IN ('failed', 'interrupted') OR rr.error IS NOT NULL
 ORDER BY r.started_at DESC, r.run_id DESC;
COMMENT ON VIEW pgsweep.run_failures IS
    'Failed and interrupted runs, and the rules runs skipped or failed on, newest first';

-- ---- views/runs.sql ----------------------------------------
-- Every recorded run, newest first when ordered by run_id, with the status it has now: a run
-- still 'running' whose session is gone shows as 'interrupted' even before the next run_begin
-- writes it so.
CREATE OR REPLACE VIEW pgsweep.runs AS
SELECT r.run_id, r.started_at, r.ended_at, r.ended_at - r.started_at AS duration,
       r.invoked_by, r.role_name,
       CASE WHEN r.status = 'running' AND NOT pgsweep.run_alive(r.run_id, r.pid)
            THEN 'interrupted' ELSE r.status END AS status,
       r.error, r.rows_deleted, r.rows_archived, r.batches, r.rows_given_way, r.pauses,
       r.paused_for, r.pid
  FROM pgsweep.run r;
COMMENT ON VIEW pgsweep.runs IS
    'Cleanup runs with their current status (a run whose session died shows as interrupted)';

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
        RAISE WARNING 'pgsweep: event trigger pgsweep_forget_dropped_rules not created (needs a superuser)'
            USING HINT = 'Rules of dropped tables are skipped and reported by pgsweep verify instead.';
    ELSIF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = v_owner)
          -- The function deletes from pgsweep.expiry_rule, firing its triggers: whoever owns
          -- that table or its schema must be that same superuser (the function checks it too).
          OR (SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
               WHERE c.oid = 'pgsweep.expiry_rule'::regclass) IS DISTINCT FROM v_owner
          OR (SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
               WHERE n.nspname = 'pgsweep') IS DISTINCT FROM v_owner THEN
        RAISE WARNING 'pgsweep: event trigger pgsweep_forget_dropped_rules not created: the engine belongs to % (its function), % (its rule table) and % (its schema), not to one superuser',
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
-- Pure arithmetic on an instant and a zone, deleting nothing: the views that hide expired rows
-- (pgsweep.create_live_view) call it with their reader's rights.
GRANT EXECUTE ON FUNCTION pgsweep.wall_clock_cutoff(timestamptz, text) TO PUBLIC;
-- The record of a cleanup's own concurrent detaches: written by the role that removes
-- partitions (it owns the tables, and is normally the engine's owner), read by no one else.
REVOKE ALL ON pgsweep.partition_detach FROM PUBLIC;

INSERT INTO pgsweep.release (version) VALUES ('1.4') ON CONFLICT (version) DO NOTHING;
DO $$
BEGIN
    PERFORM set_config('client_min_messages',
                       current_setting('pgsweep.install_client_min_messages'), true);
END $$;

