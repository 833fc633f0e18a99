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
