-- Every partition of a rule's table that holds only garbage (expired_partitions), removed by
-- remove_partition before the rule's rows are deleted batch by batch (which then only find the
-- partition that straddles the cutoff, and the DEFAULT one). Each lock is waited for at most
-- 100 ms, so an app writing into the table never waits longer than that behind the sweep; a
-- partition whose lock is not granted is tried three times, then left with a NOTICE (its rows
-- are row-deleted by the batches that follow; the next sweep tries again). A partition that
-- cannot be removed for good (the role may not drop it, a foreign key refers to the table, the
-- archive already has a table of its name) gets a WARNING and is row-deleted the same way.
-- Every partition's rows are counted first, before the first lock on the table: the table's
-- ACCESS EXCLUSIVE lock then covers catalog changes only. The count takes no lock writers wait
-- for (a SHARE lock would hold them off until the drop commits): a row written into such a
-- partition meanwhile is past the cutoff too, and the count may miss it, never the reverse.
-- Runs in the caller's transaction: the table's lock is held until it ends, so the sweep step
-- that calls this commits right after it.
CREATE OR REPLACE FUNCTION pgsweep.drop_expired_partitions(
    p_rule pgsweep.expiry_rule, OUT partitions integer, OUT rows bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '100ms'
AS $$
DECLARE
    v_part   regclass;
    v_parts  regclass[] := ARRAY[]::regclass[];
    v_counts bigint[] := ARRAY[]::bigint[];
    v_count  bigint;
BEGIN
    partitions := 0;
    rows := 0;
    FOR v_part IN SELECT e.partition FROM pgsweep.expired_partitions(p_rule) e LOOP
        BEGIN
            /* A regclass: quoted by its output function.
             * @plpgsql_check_options: security_warnings = false
             */
            EXECUTE format('SELECT count(*) FROM %s', v_part) INTO v_count;
            v_parts := v_parts || v_part;
            v_counts := v_counts || v_count;
        EXCEPTION
            WHEN lock_not_available THEN
                RAISE NOTICE 'pgsweep: partition % of % left for the next sweep: a lock was not granted within %',
                    v_part, p_rule.table_name, current_setting('lock_timeout')
                    USING HINT = 'Its rows are deleted row by row meanwhile.';
            WHEN insufficient_privilege THEN
                RAISE WARNING 'pgsweep: partition % of % cannot be removed: %',
                    v_part, p_rule.table_name, SQLERRM
                    USING HINT = 'Its rows are deleted row by row instead (only its owner may drop it).';
        END;
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(v_parts, 1), 0) LOOP
        FOR v_attempt IN 1..3 LOOP
            BEGIN
                rows := rows + pgsweep.remove_partition(p_rule, v_parts[i], v_counts[i]);
                partitions := partitions + 1;
                EXIT;
            EXCEPTION
                WHEN lock_not_available THEN
                    -- Sleep only while holding no lock on the table (nothing removed yet).
                    IF v_attempt < 3 AND partitions = 0 THEN
                        PERFORM pg_sleep(0.1 * v_attempt);
                        CONTINUE;
                    END IF;
                    RAISE NOTICE 'pgsweep: partition % of % left for the next sweep: a lock was not granted within %',
                        v_parts[i], p_rule.table_name, current_setting('lock_timeout')
                        USING HINT = 'Its rows are deleted row by row meanwhile.';
                    RETURN;
                WHEN insufficient_privilege OR dependent_objects_still_exist
                     OR foreign_key_violation OR duplicate_table OR invalid_schema_name THEN
                    RAISE WARNING 'pgsweep: partition % of % cannot be removed: %',
                        v_parts[i], p_rule.table_name, SQLERRM
                        USING HINT = 'Its rows are deleted row by row instead.';
                    EXIT;
            END;
        END LOOP;
    END LOOP;
END $$;
COMMENT ON FUNCTION pgsweep.drop_expired_partitions(pgsweep.expiry_rule) IS
    'Drop (or archive) every partition past a rule''s cutoff, waiting at most 100 ms per lock';
