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
