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
