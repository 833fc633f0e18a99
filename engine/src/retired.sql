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
            'pgsweep.add_rule(regclass, name, interval, text)']) AS signature
         WHERE to_regprocedure(signature) IS NOT NULL
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_routine);
    END LOOP;
END $$;
