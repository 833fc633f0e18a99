-- The engine release installed here: the newest row of pgsweep.release.
CREATE OR REPLACE FUNCTION pgsweep.version()
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.version FROM pgsweep.release r
     ORDER BY string_to_array(r.version, '.')::integer[] DESC LIMIT 1
$$;
COMMENT ON FUNCTION pgsweep.version() IS 'The engine release installed in this database';
