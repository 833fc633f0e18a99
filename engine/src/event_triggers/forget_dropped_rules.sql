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
