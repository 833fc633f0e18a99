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
