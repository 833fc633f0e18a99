-- The cutoff of a timestamp column whose values are wall-clock times in p_zone: the earliest
-- wall-clock time that may stand for an instant at or after p_instant, so that
-- "column < wall_clock_cutoff(...)" takes a row only when every reading of its value is before
-- p_instant, and stays a plain comparison an index can serve. A value has two readings around a
-- daylight-saving change: in the repeated hour of a fall-back, and in the skipped hour of a
-- spring-forward (a time that never happened could have meant either offset). PostgreSQL's own
-- reading ("value AT TIME ZONE zone", instant_expression) is the later of the two in either case,
-- so this is the smallest wall-clock time that PostgreSQL reads as p_instant or later. It is
-- p_instant's own wall-clock time, or an earlier one when a change is near: p_instant plus the
-- offset in force before or after the change, or the wall-clock time at which the change ends
-- (the start of a repeated hour). A wall-clock time after a skipped hour whose reading is before
-- p_instant may still be kept (the rows of the skipped hour before it may be live): it goes at
-- most the length of the skipped hour later, never early.
CREATE OR REPLACE FUNCTION pgsweep.wall_clock_cutoff(p_instant timestamptz, p_zone text)
RETURNS timestamp
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
    -- Wider than any daylight-saving shift tzdata knows (at most 2 hours).
    v_reach      constant interval := interval '3 hours';
    v_utc        constant timestamp := p_instant AT TIME ZONE 'UTC';
    v_candidates timestamp[];
    v_candidate  timestamp;
    v_best       timestamp := p_instant AT TIME ZONE p_zone;
    v_lo         timestamptz;
    v_hi         timestamptz;
    v_mid        timestamptz;
BEGIN
    -- p_instant plus the offset in force at either edge of the reach.
    v_candidates := ARRAY[
        v_utc + (((p_instant - v_reach) AT TIME ZONE p_zone) - ((p_instant - v_reach) AT TIME ZONE 'UTC')),
        v_utc + (((p_instant + v_reach) AT TIME ZONE p_zone) - ((p_instant + v_reach) AT TIME ZONE 'UTC'))];
    -- Where the offset changes on either side of p_instant, the wall-clock time the change ends
    -- at: its first whole second (tzdata changes fall on whole seconds), found by bisection.
    FOR v_half IN 0..1 LOOP
        v_lo := to_timestamp(floor(extract(epoch FROM p_instant - (1 - v_half) * v_reach)));
        v_hi := to_timestamp(ceil(extract(epoch FROM p_instant + v_half * v_reach)));
        CONTINUE WHEN (v_lo AT TIME ZONE p_zone) - (v_lo AT TIME ZONE 'UTC')
                    = (v_hi AT TIME ZONE p_zone) - (v_hi AT TIME ZONE 'UTC');
        WHILE v_hi - v_lo > interval '1 second' LOOP
            v_mid := to_timestamp(floor(extract(epoch FROM v_lo)
                                        + extract(epoch FROM v_hi - v_lo) / 2));
            IF (v_mid AT TIME ZONE p_zone) - (v_mid AT TIME ZONE 'UTC')
             = (v_lo AT TIME ZONE p_zone) - (v_lo AT TIME ZONE 'UTC') THEN
                v_lo := v_mid;
            ELSE
                v_hi := v_mid;
            END IF;
        END LOOP;
        v_candidates := v_candidates || (v_hi AT TIME ZONE p_zone);
    END LOOP;
    FOREACH v_candidate IN ARRAY v_candidates LOOP
        IF v_candidate < v_best AND (v_candidate AT TIME ZONE p_zone) >= p_instant THEN
            v_best := v_candidate;
        END IF;
    END LOOP;
    RETURN v_best;
END $$;
COMMENT ON FUNCTION pgsweep.wall_clock_cutoff(timestamptz, text) IS
    'The earliest wall-clock time in a zone that may stand for the instant or later (cutoffs)';
