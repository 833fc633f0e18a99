-- The size of a sweep's next batch, from the last one's (p_size rows, p_took long): grown or
-- shrunk towards pgsweep.batch_target, by at most 1.2x up and 0.5x down per batch (as GitLab's
-- batch optimizer), within pgsweep.batch_min .. batch_max; halved when sessions waited for the
-- last batch (p_blocked > 0). Unchanged with pgsweep.pacing off.
CREATE OR REPLACE FUNCTION pgsweep.next_batch_size(
    p_size integer, p_took interval, p_blocked integer DEFAULT 0)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_target double precision;
    v_took   double precision := extract(epoch FROM p_took);
    v_factor double precision;
BEGIN
    IF NOT pgsweep.setting('pacing')::boolean THEN
        RETURN p_size;
    END IF;
    v_target := extract(epoch FROM pgsweep.setting('batch_target')::interval);
    IF coalesce(p_blocked, 0) > 0 THEN
        v_factor := 0.5;
    ELSIF v_took <= 0 THEN
        v_factor := 1.2;
    ELSE
        v_factor := greatest(0.5, least(1.2, v_target / v_took));
    END IF;
    RETURN greatest(pgsweep.setting('batch_min')::integer,
                    least(pgsweep.setting('batch_max')::integer,
                          round(p_size * v_factor)::integer));
END $$;
COMMENT ON FUNCTION pgsweep.next_batch_size(integer, interval, integer) IS
    'The adaptive batch size of a sweep: towards pgsweep.batch_target per batch, bounded';
