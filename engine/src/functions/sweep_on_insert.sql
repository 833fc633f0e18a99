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
