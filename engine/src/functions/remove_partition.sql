-- Take one partition that holds only garbage (expired_partitions) out of its table and drop it,
-- or move it into the rule's partition_archive_schema as a plain table; returns its rows. Plain
-- DETACH / DROP lock the parent ACCESS EXCLUSIVE for a catalog change only, never longer than
-- the caller's lock_timeout to obtain (drop_expired_partitions sets a short one); the rows are
-- counted first, under a SHARE lock on the partition alone, so the count is what went (p_rows:
-- the caller counted them already, in this transaction, under that lock).
CREATE OR REPLACE FUNCTION pgsweep.remove_partition(
    p_rule pgsweep.expiry_rule, p_partition regclass, p_rows bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_pending boolean;
    v_rows    bigint;
    v_archive name := p_rule.partition_archive_schema;
    v_name    name;
BEGIN
    SELECT e.detach_pending INTO v_pending
      FROM pgsweep.expired_partitions(p_rule) e WHERE e.partition = p_partition;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a partition of % past the cutoff of its rule on "%"',
            p_partition, p_rule.table_name, p_rule.column_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT c.relname INTO v_name FROM pg_class c WHERE c.oid = p_partition;
    IF v_archive IS NOT NULL
       AND to_regclass(format('%I.%I', v_archive, v_name)) IS NOT NULL THEN
        RAISE EXCEPTION 'cannot archive partition %: %.% already exists', p_partition,
            quote_ident(v_archive), quote_ident(v_name) USING ERRCODE = 'duplicate_table';
    END IF;
    /* Identifiers are regclass output or quoted with %I.
     * @plpgsql_check_options: security_warnings = false
     */
    EXECUTE format('LOCK TABLE %s IN SHARE MODE', p_partition);
    IF p_rows IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', p_partition) INTO v_rows;
    ELSE
        v_rows := p_rows;
    END IF;
    IF v_pending THEN
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s FINALIZE', p_rule.table_name, p_partition);
    END IF;
    IF v_archive IS NULL THEN
        EXECUTE format('DROP TABLE %s', p_partition);
    ELSE
        IF NOT v_pending THEN
            EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', p_rule.table_name, p_partition);
        END IF;
        EXECUTE format('ALTER TABLE %s SET SCHEMA %I', p_partition, v_archive);
    END IF;
    RETURN v_rows;
END $$;
COMMENT ON FUNCTION pgsweep.remove_partition(pgsweep.expiry_rule, regclass, bigint) IS
    'Detach one expired partition and drop it (or move it to the archive schema); its rows';
