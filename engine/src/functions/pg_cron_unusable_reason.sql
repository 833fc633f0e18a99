-- NULL when cron.schedule() can be called from this database; otherwise the reason.
CREATE OR REPLACE FUNCTION pgsweep.pg_cron_unusable_reason()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cron_database text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        RETURN 'pg_cron is not installed on this server';
    END IF;
    -- cron.database_name is readable by superusers and pg_read_all_settings only.
    BEGIN
        v_cron_database := current_setting('cron.database_name', true);
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN format('role %s may not read cron.database_name (pg_read_all_settings)', current_user);
    END;
    -- The setting exists only once the library is loaded (shared_preload_libraries).
    IF v_cron_database IS NULL OR v_cron_database = '' THEN
        RETURN 'pg_cron is not loaded (it must be in shared_preload_libraries)';
    END IF;
    IF v_cron_database <> current_database() THEN
        RETURN format('this database (%s) is not cron.database_name (%s)',
                      current_database(), v_cron_database);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron') THEN
        RETURN 'the pg_cron extension is not created in this database (CREATE EXTENSION pg_cron)';
    END IF;
    IF NOT has_schema_privilege('cron', 'USAGE')
       OR NOT has_function_privilege('cron.schedule(text, text, text)', 'EXECUTE') THEN
        RETURN format('role %s may not use cron.schedule()', current_user);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION pgsweep.pg_cron_unusable_reason() IS
    'Why pg_cron cannot schedule jobs from this database, or NULL when it can';
