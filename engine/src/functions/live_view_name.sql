-- The default name of a table's live view (pgsweep.create_live_view): <table>_live when that
-- fits in a name (63 bytes), else the table's name cut to fit, then _ and 8 hex digits of the
-- md5 of the whole name, then _live: two long names with a common first 63 bytes, which
-- PostgreSQL would cut to one and the same name, get two views.
CREATE OR REPLACE FUNCTION pgsweep.live_view_name(p_table name)
RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_suffix text := '_' || left(md5(p_table), 8) || '_live';
    v_head   text := p_table;
BEGIN
    IF octet_length(p_table || '_live') <= 63 THEN
        RETURN p_table || '_live';
    END IF;
    -- Character by character, so that a multibyte character is never cut in half.
    WHILE octet_length(v_head || v_suffix) > 63 LOOP
        v_head := left(v_head, -1);
    END LOOP;
    RETURN v_head || v_suffix;
END $$;
COMMENT ON FUNCTION pgsweep.live_view_name(name) IS
    'The default name of a table''s live view: <table>_live, or cut with a hash when too long';
