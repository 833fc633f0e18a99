-- The event trigger behind pgsweep.forget_dropped_rules(). Creating an event trigger needs a
-- superuser; without one the engine still installs, consumers skip rules whose table or column
-- is gone (pgsweep.rule_problem) and pgsweep verify reports them, and this says so.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'pgsweep_forget_dropped_rules') THEN
        RETURN;
    END IF;
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        CREATE EVENT TRIGGER pgsweep_forget_dropped_rules ON sql_drop
            EXECUTE FUNCTION pgsweep.forget_dropped_rules();
    ELSE
        RAISE NOTICE 'pgsweep: event trigger pgsweep_forget_dropped_rules not created (needs a superuser)'
            USING HINT = 'Rules of dropped tables are skipped and reported by pgsweep verify instead.';
    END IF;
END $$;
