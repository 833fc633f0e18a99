-- Column names as a list of quoted identifiers, in order: "a", "b".
CREATE OR REPLACE FUNCTION pgsweep.quoted_names(p_names name[])
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('%I', n), ', ' ORDER BY i) FROM unnest(p_names) WITH ORDINALITY u (n, i)
$$;
COMMENT ON FUNCTION pgsweep.quoted_names(name[]) IS 'Names as a comma-separated list of quoted identifiers';
