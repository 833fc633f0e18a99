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
