-- The value of the session setting pgsweep.open_run while a committing run is open: its run_id
-- and the statement it is live in (statement_timestamp(): the receipt of the client's command,
-- the same through every COMMIT of one CALL). run_begin sets it, every batched step refreshes
-- it (a client-driven cleanup sends each step as a statement of its own), run_end and the
-- procedure empty it. A run_begin in the same statement is nested in that live run, never
-- after it: close_own_leftovers then closes nothing.
CREATE OR REPLACE FUNCTION pgsweep.open_run_mark(p_run_id bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_run_id::text || '@' || to_char(statement_timestamp() AT TIME ZONE 'UTC',
                                            'YYYYMMDDHH24MISSUS')
$$;
COMMENT ON FUNCTION pgsweep.open_run_mark(bigint) IS
    'pgsweep.open_run''s value for an open run: its run_id and the statement it is live in';
