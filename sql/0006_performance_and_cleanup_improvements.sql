-- 0006_performance_and_cleanup_improvements: the expiry lifecycle of the token tables.
--   * indexes that make every cleanup path and every hot token lookup index-driven;
--   * pgsweep.* : a table-agnostic engine (expiry rules, batched purges, an insert trigger);
--   * the public contract: cleanup_expired_*(), cleanup_all_expired_tokens(),
--     refresh_deck_progress(uuid, uuid), refresh_stale_deck_progress(uuid).
-- Run with:  psql -X -d "$DATABASE_URL" -f sql/0006_performance_and_cleanup_improvements.sql
-- Alembic runs this same file for revision 0006. Safe to run again after an interruption.
\set ON_ERROR_STOP on

-- Part 1, outside any transaction: CREATE INDEX CONCURRENTLY cannot run inside one, and it is
-- what keeps the app's writes flowing while a large table is indexed.
-- A caller's own lock_timeout wins (pgsweep upgrade sets a shorter one and retries).
DO $$
BEGIN
    IF current_setting('lock_timeout') = '0' THEN
        PERFORM set_config('lock_timeout', '5s', false);
    END IF;
END $$;

-- A concurrent build that failed earlier leaves an INVALID index that CREATE ... IF NOT EXISTS
-- would silently keep. Drop those first so the builds below redo them. (A plain DROP INDEX: a
-- function cannot run DROP INDEX CONCURRENTLY. The invalid index serves no query; the drop
-- waits at most lock_timeout.)
DO $$
DECLARE
    v_index regclass;
BEGIN
    FOR v_index IN
        SELECT i.indexrelid::regclass
          FROM pg_index i
         WHERE NOT i.indisvalid
           AND i.indexrelid::regclass::text IN (
               'idx_password_reset_tokens_expires_at', 'idx_password_reset_tokens_used_at',
               'idx_password_reset_tokens_user_id', 'idx_email_verification_tokens_expires_at',
               'idx_email_verification_tokens_used_at', 'idx_email_verification_tokens_user_id',
               'idx_refresh_tokens_expires_at')
    LOOP
        RAISE NOTICE 'dropping invalid index % left by an interrupted build', v_index;
        EXECUTE format('DROP INDEX %s', v_index);
    END LOOP;
END $$;

-- Expired rows: the range scan every cleanup batch starts from.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_password_reset_tokens_expires_at
    ON password_reset_tokens (expires_at);
-- Used rows: few at any time (the trigger and the nightly job remove them), so a partial index
-- stays tiny. It serves "used_at < cutoff", which implies used_at IS NOT NULL.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_password_reset_tokens_used_at
    ON password_reset_tokens (used_at) WHERE used_at IS NOT NULL;
-- The app's "invalidate the user's outstanding tokens" UPDATE, and ON DELETE CASCADE from users.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_password_reset_tokens_user_id
    ON password_reset_tokens (user_id);

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_email_verification_tokens_expires_at
    ON email_verification_tokens (expires_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_email_verification_tokens_used_at
    ON email_verification_tokens (used_at) WHERE used_at IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_email_verification_tokens_user_id
    ON email_verification_tokens (user_id);

-- refresh_tokens already has (user_id) from 0005; token_hash and users.email are served by
-- their UNIQUE constraints, so no index is added for those lookups.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_refresh_tokens_expires_at
    ON refresh_tokens (expires_at);

-- Verify: every index this revision owns exists and is valid.
DO $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(wanted, ', ') INTO v_missing
      FROM unnest(ARRAY[
               'idx_password_reset_tokens_expires_at', 'idx_password_reset_tokens_used_at',
               'idx_password_reset_tokens_user_id', 'idx_email_verification_tokens_expires_at',
               'idx_email_verification_tokens_used_at', 'idx_email_verification_tokens_user_id',
               'idx_refresh_tokens_expires_at']) AS wanted
     WHERE NOT EXISTS (SELECT FROM pg_index i
                        WHERE i.indexrelid = to_regclass(wanted) AND i.indisvalid);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'indexes missing or invalid after build: %', v_missing;
    END IF;
END $$;

-- Part 2, one transaction: the engine, the contract, the triggers, and the version record.
BEGIN;

CREATE SCHEMA IF NOT EXISTS pgsweep;
COMMENT ON SCHEMA pgsweep IS 'pgsweep: expiry rules and the batched purge engine behind them';

-- One row per way a row of a table becomes garbage: once <column_name> < now() - keep_for.
-- Timestamp and date columns compare with that instant; numeric columns hold epoch seconds.
CREATE TABLE IF NOT EXISTS pgsweep.expiry_rule (
    table_name  regclass NOT NULL,
    column_name name     NOT NULL,
    keep_for    interval NOT NULL DEFAULT '0',
    PRIMARY KEY (table_name, column_name),
    CONSTRAINT keep_for_not_negative CHECK (keep_for >= '0')
);
COMMENT ON TABLE pgsweep.expiry_rule IS
    'A row of table_name is garbage once column_name < now() - keep_for (numbers: epoch seconds)';

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

-- The cutoff of a rule as an SQL literal of the column's own type, so the planner sees a
-- constant it can match against the column's index.
CREATE OR REPLACE FUNCTION pgsweep.cutoff_literal(p_table regclass, p_column name, p_keep_for interval)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type    regtype := pgsweep.column_type(p_table, p_column);
    v_instant timestamptz := now() - p_keep_for;
BEGIN
    CASE
        WHEN v_type IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
            RETURN format('%L::%s', v_instant, v_type);
        -- Whole seconds: "ttl < 1000.5" is "ttl < 1001" for an integer ttl, hence ceil.
        WHEN v_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) THEN
            RETURN format('%s::%s', ceil(extract(epoch FROM v_instant))::bigint, v_type);
        WHEN v_type IN ('numeric'::regtype, 'double precision'::regtype, 'real'::regtype) THEN
            RETURN format('%s::%s', extract(epoch FROM v_instant), v_type);
        ELSE
            RAISE EXCEPTION 'column "%" of % has type %, which cannot expire', p_column, p_table, v_type
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a timestamp, date, or a number of epoch seconds.';
    END CASE;
END $$;
COMMENT ON FUNCTION pgsweep.cutoff_literal(regclass, name, interval) IS
    'now() - keep_for as a literal of the column''s type (epoch seconds for numbers)';

-- One batch, one statement: lock up to p_batch_size garbage rows in index order, skipping rows
-- another transaction holds, and delete them by ctid. p_after (the last value of the previous
-- batch) makes the next batch start where this one ended instead of rescanning rows already
-- deleted in this transaction. A function of its own so that EXPLAIN (pgsweep verify, the
-- tests) can inspect exactly the statement the purge runs.
CREATE OR REPLACE FUNCTION pgsweep.purge_batch_statement(
    p_table regclass, p_column name, p_keep_for interval, p_after text, p_batch_size integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_after text := '';
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'batch size must be a positive integer, not %', p_batch_size
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_after IS NOT NULL THEN
        v_after := format('AND %I >= %L::%s', p_column, p_after, pgsweep.column_type(p_table, p_column));
    END IF;
    RETURN format(
        'WITH gone AS (
             DELETE FROM %1$s
              WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM %1$s
                     WHERE %2$I < %3$s %4$s
                     ORDER BY %2$I
                     LIMIT %5$s
                       FOR UPDATE SKIP LOCKED))
             RETURNING %2$I AS value)
         SELECT count(*)::integer, max(value)::text FROM gone',
        p_table, p_column, pgsweep.cutoff_literal(p_table, p_column, p_keep_for), v_after,
        p_batch_size);
END $$;
COMMENT ON FUNCTION pgsweep.purge_batch_statement(regclass, name, interval, text, integer) IS
    'The DELETE one purge batch runs (for EXPLAIN)';

CREATE OR REPLACE FUNCTION pgsweep.purge_batch(
    p_table regclass, p_column name, p_keep_for interval, p_after text, p_batch_size integer,
    OUT deleted integer, OUT last_value text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    /* The statement is built by purge_batch_statement, which quotes every identifier (%I,
     * regclass) and value (%L); plpgsql_check cannot follow that into another function.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE pgsweep.purge_batch_statement(p_table, p_column, p_keep_for, p_after, p_batch_size)
       INTO deleted, last_value;
END $$;
COMMENT ON FUNCTION pgsweep.purge_batch(regclass, name, interval, text, integer) IS
    'Delete one batch of garbage rows (skipping locked ones); returns the count and the last value';

-- Every batch of one rule, inside the caller's transaction. Stops when a batch comes back short:
-- the index range is exhausted (locked rows are left for the next run).
CREATE OR REPLACE FUNCTION pgsweep.purge(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0', p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_after text;
    v_batch record;
BEGIN
    LOOP
        SELECT b.deleted, b.last_value INTO v_batch
          FROM pgsweep.purge_batch(p_table, p_column, p_keep_for, v_after, p_batch_size) AS b;
        v_total := v_total + v_batch.deleted;
        EXIT WHEN v_batch.deleted < p_batch_size;
        v_after := v_batch.last_value;
    END LOOP;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.purge(regclass, name, interval, integer) IS
    'Delete every garbage row of one rule in batches, in the caller''s transaction';

-- All rules of one table, in the caller's transaction. A table without rules is an error,
-- never a silent "0 rows".
CREATE OR REPLACE FUNCTION pgsweep.sweep_table(p_table regclass, p_batch_size integer DEFAULT 1000)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_total bigint := 0;
    v_rule  record;
BEGIN
    FOR v_rule IN
        SELECT r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE r.table_name = p_table ORDER BY r.column_name
    LOOP
        v_total := v_total + pgsweep.purge(p_table, v_rule.column_name, v_rule.keep_for, p_batch_size);
    END LOOP;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
    RETURN v_total;
END $$;
COMMENT ON FUNCTION pgsweep.sweep_table(regclass, integer) IS
    'Delete the garbage of every rule of a table, in the caller''s transaction';

-- Bring a table under the lifecycle: validates the column type and that an index leads with
-- the column (so the purge is index-driven), then records (or updates) the rule.
CREATE OR REPLACE FUNCTION pgsweep.add_rule(
    p_table regclass, p_column name, p_keep_for interval DEFAULT '0')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pgsweep.cutoff_literal(p_table, p_column, coalesce(p_keep_for, '0'));
    IF NOT EXISTS (
        SELECT FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = p_table AND a.attname = p_column AND i.indisvalid)
    THEN
        RAISE EXCEPTION 'no valid index on % leads with column "%"', p_table, p_column
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('CREATE INDEX CONCURRENTLY ON %s (%I);', p_table, p_column);
    END IF;
    INSERT INTO pgsweep.expiry_rule (table_name, column_name, keep_for)
    VALUES (p_table, p_column, coalesce(p_keep_for, '0'))
    ON CONFLICT (table_name, column_name) DO UPDATE SET keep_for = excluded.keep_for;
END $$;
COMMENT ON FUNCTION pgsweep.add_rule(regclass, name, interval) IS
    'Register (or update) an expiry rule after checking its column type and index';

-- AFTER INSERT ... FOR EACH STATEMENT: one bounded batch of one rule of the table.
--   TG_ARGV[0]: the rule column to sweep; TG_ARGV[1]: rows per sweep (default 10);
--   TG_ARGV[2]: insert statements of the session that skip the sweep after a short batch
--   (default 50).
-- Only sweep rules whose rows the app never updates again (see README, "Triggers"): SKIP LOCKED
-- keeps the trigger from waiting, and choosing such rows keeps the app from waiting on it.
-- A sweep costs a freshly planned statement even when it finds nothing, about as much as the
-- insert itself (make bench, S4). So a batch that comes back short, meaning the garbage is
-- gone, lets the session's next inserts skip the sweep; a full batch means there is more, and
-- the next insert sweeps again. The countdown is a session setting, transactional like any.
-- SECURITY DEFINER so the app's role needs no grant on pgsweep; it can delete only rows the
-- table's own rule marks as garbage. Errors become warnings: an insert never fails for it.
CREATE OR REPLACE FUNCTION pgsweep.sweep_on_insert()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_keep_for interval;
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
    SELECT r.keep_for INTO v_keep_for FROM pgsweep.expiry_rule r
     WHERE r.table_name = TG_RELID AND r.column_name = TG_ARGV[0];
    IF FOUND THEN
        BEGIN
            SELECT b.deleted INTO v_deleted
              FROM pgsweep.purge_batch(TG_RELID, TG_ARGV[0], v_keep_for, NULL, v_rows) AS b;
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

-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions above.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 1000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  record;
    v_batch record;
    v_after text;
    v_rule_total bigint;
BEGIN
    deleted := 0;
    FOR v_rule IN
        SELECT r.table_name, r.column_name, r.keep_for FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_after := NULL;
        v_rule_total := 0;
        LOOP
            SELECT b.deleted, b.last_value INTO v_batch
              FROM pgsweep.purge_batch(v_rule.table_name, v_rule.column_name, v_rule.keep_for,
                                       v_after, p_batch_size) AS b;
            COMMIT;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.deleted OPERATOR(pg_catalog.<) p_batch_size;
            v_after := v_batch.last_value;
            IF p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(p_pause);
            END IF;
        END LOOP;
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT FOUND THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch; CALL outside a transaction block';

-- Share of a user's decks: the progress figures of each deck in p_deck_ids.
CREATE OR REPLACE FUNCTION pgsweep.deck_progress(p_user_id uuid, p_deck_ids uuid[])
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
COMMENT ON FUNCTION pgsweep.deck_progress(uuid, uuid[]) IS
    'Progress figures of a user''s decks, computed from deck_flashcards and user_card_progress';

-- The public contract (schema-facts.md). The cleanup functions are SECURITY DEFINER so that a
-- maintenance role can purge garbage without holding DELETE on the token tables; they take no
-- arguments and can delete nothing but rows their table's rules mark as garbage.
CREATE OR REPLACE FUNCTION public.cleanup_expired_password_reset_tokens()
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pgsweep.sweep_table('public.password_reset_tokens')::integer $$;
COMMENT ON FUNCTION public.cleanup_expired_password_reset_tokens() IS
    'Delete expired or used password-reset tokens; returns how many';

CREATE OR REPLACE FUNCTION public.cleanup_expired_email_verification_tokens()
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pgsweep.sweep_table('public.email_verification_tokens')::integer $$;
COMMENT ON FUNCTION public.cleanup_expired_email_verification_tokens() IS
    'Delete expired or used email-verification tokens; returns how many';

CREATE OR REPLACE FUNCTION public.cleanup_expired_refresh_tokens()
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pgsweep.sweep_table('public.refresh_tokens')::integer $$;
COMMENT ON FUNCTION public.cleanup_expired_refresh_tokens() IS
    'Delete expired refresh tokens; returns how many';

CREATE OR REPLACE FUNCTION public.cleanup_all_expired_tokens()
RETURNS TABLE (password_reset_cleaned integer, email_verification_cleaned integer,
               refresh_tokens_cleaned integer, total_cleaned integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    password_reset_cleaned := public.cleanup_expired_password_reset_tokens();
    email_verification_cleaned := public.cleanup_expired_email_verification_tokens();
    refresh_tokens_cleaned := public.cleanup_expired_refresh_tokens();
    total_cleaned := password_reset_cleaned + email_verification_cleaned + refresh_tokens_cleaned;
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION public.cleanup_all_expired_tokens() IS
    'Run the three token cleanups; one row of per-table counts and their total';

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
      FROM pgsweep.deck_progress(p_user_id, ARRAY[p_deck_id]) AS p
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
      FROM pgsweep.deck_progress(
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

-- The rules behind the contract. add_rule checks each has its index (Part 1).
DO $$
BEGIN
    PERFORM pgsweep.add_rule('public.password_reset_tokens', 'expires_at');
    PERFORM pgsweep.add_rule('public.password_reset_tokens', 'used_at');
    PERFORM pgsweep.add_rule('public.email_verification_tokens', 'expires_at');
    PERFORM pgsweep.add_rule('public.email_verification_tokens', 'used_at');
    PERFORM pgsweep.add_rule('public.refresh_tokens', 'expires_at');
END $$;

-- Opportunistic cleanup on insert. Password-reset and verification triggers sweep only USED
-- rows: the app's invalidate UPDATE touches every unused row of a user, expired or not, so
-- locking expired-unused rows would make it wait; used rows are touched by no app statement.
CREATE OR REPLACE TRIGGER trg_password_reset_tokens_cleanup
    AFTER INSERT ON public.password_reset_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION pgsweep.sweep_on_insert('used_at', '10');
CREATE OR REPLACE TRIGGER trg_email_verification_tokens_cleanup
    AFTER INSERT ON public.email_verification_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION pgsweep.sweep_on_insert('used_at', '10');
CREATE OR REPLACE TRIGGER trg_refresh_tokens_cleanup
    AFTER INSERT ON public.refresh_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION pgsweep.sweep_on_insert('expires_at', '10');

-- Nothing that deletes is executable by PUBLIC. Roles are granted in README, "Roles".
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA pgsweep FROM PUBLIC;
-- PUBLIC may use the schema for one routine only: the read-only helper behind
-- refresh_deck_progress and refresh_stale_deck_progress. Those run with their caller's rights,
-- as 0001's refresh_deck_progress did, so a role that could refresh progress before 0006 (with
-- its grants on the progress tables) still can; deck_progress reads only through the caller's
-- own table privileges. The engine's table grants PUBLIC nothing.
GRANT USAGE ON SCHEMA pgsweep TO PUBLIC;
GRANT EXECUTE ON FUNCTION pgsweep.deck_progress(uuid, uuid[]) TO PUBLIC;
REVOKE EXECUTE ON FUNCTION public.cleanup_expired_password_reset_tokens(),
                           public.cleanup_expired_email_verification_tokens(),
                           public.cleanup_expired_refresh_tokens(),
                           public.cleanup_all_expired_tokens() FROM PUBLIC;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback").
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        UPDATE alembic_version SET version_num = '0006' WHERE version_num = '0005';
    END IF;
END $$;

COMMIT;
