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
