-- How run history names a table: schema-qualified whatever the caller's search_path (regclass
-- output under the pinned path), so one table has one name in pgsweep.run_rule, rule_counter and
-- rule_status, and the name stays readable after the table is dropped.
CREATE OR REPLACE FUNCTION pgsweep.table_key(p_table regclass)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- PL/pgSQL, not SQL: a SQL function with a SET clause is planned again at every call, and every
-- batch's record asks.
AS $$
BEGIN
    RETURN p_table::text;
END $$;
COMMENT ON FUNCTION pgsweep.table_key(regclass) IS
    'A table''s name in run history: schema-qualified, independent of the caller''s search_path';
