-- Every rule of every table (or of p_table), each batch its own transaction, so no lock is
-- held longer than one batch and vacuum can keep up. CALL it outside a transaction block.
-- A rule that cannot run (rule_problem) is skipped with a warning; the others go on.
-- PostgreSQL forbids a SET search_path clause on a procedure that commits, so this body names
-- everything schema-qualified, operators included (OPERATOR(pg_catalog.=): an unqualified
-- "regclass = regclass" resolves to any exact-match operator planted on the caller's path,
-- which would then run with the caller's rights), and leaves all data work to the pinned
-- functions.
CREATE OR REPLACE PROCEDURE pgsweep.sweep(
    p_table regclass DEFAULT NULL, p_batch_size integer DEFAULT 5000,
    p_pause interval DEFAULT '0', INOUT deleted bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    v_rule  pgsweep.expiry_rule;
    v_batch record;
    v_from  text;
    v_problem text;
    v_rule_total bigint;
    v_dropped record;
    v_found boolean := false;
BEGIN
    deleted := 0;
    FOR v_rule IN
        SELECT r.* FROM pgsweep.expiry_rule r
         WHERE p_table IS NULL OR r.table_name OPERATOR(pg_catalog.=) p_table
         ORDER BY r.table_name::pg_catalog.text, r.column_name
    LOOP
        v_found := true;
        v_problem := pgsweep.rule_problem(v_rule);
        IF v_problem IS NOT NULL THEN
            RAISE WARNING 'pgsweep: rule %.% skipped: %', v_rule.table_name, v_rule.column_name,
                v_problem;
            CONTINUE;
        END IF;
        v_from := NULL;
        -- Whole partitions past the cutoff first (committed at once: the parent's lock goes).
        SELECT d.partitions, d.rows INTO v_dropped FROM pgsweep.drop_expired_partitions(v_rule) AS d;
        COMMIT;
        v_rule_total := v_dropped.rows;
        LOOP
            SELECT b.deleted, b.next_from INTO v_batch
              FROM pgsweep.purge_range(v_rule, v_from, p_batch_size) AS b;
            COMMIT;
            v_rule_total := v_rule_total OPERATOR(pg_catalog.+) v_batch.deleted;
            EXIT WHEN v_batch.next_from IS NULL;
            v_from := v_batch.next_from;
            IF p_pause OPERATOR(pg_catalog.>) '0'::pg_catalog.interval THEN
                PERFORM pg_catalog.pg_sleep_for(p_pause);
            END IF;
        END LOOP;
        RAISE NOTICE 'pgsweep: % rows deleted from % (%)', v_rule_total, v_rule.table_name, v_rule.column_name;
        IF v_dropped.partitions OPERATOR(pg_catalog.>) 0 THEN
            RAISE NOTICE 'pgsweep: of them, % rows in % partitions removed whole', v_dropped.rows,
                v_dropped.partitions;
        END IF;
        deleted := deleted OPERATOR(pg_catalog.+) v_rule_total;
    END LOOP;
    -- As sweep_table: a named table without rules is an error, never a silent "0 rows".
    IF p_table IS NOT NULL AND NOT v_found THEN
        RAISE EXCEPTION 'table % has no expiry rule', p_table
            USING ERRCODE = 'no_data_found', HINT = 'Register one with pgsweep.add_rule().';
    END IF;
END $$;
COMMENT ON PROCEDURE pgsweep.sweep(regclass, integer, interval, bigint) IS
    'Delete all garbage, one short transaction per batch; CALL outside a transaction block';
