-- 0007 down: unschedules the pg_cron jobs 0007 created (only those recorded in
-- pgsweep.scheduled_job; a job that existed before 0007, or was made by `pgsweep schedule`, stays)
-- and drops pgsweep.scheduled_job, pgsweep.garbage_counts and pgsweep.pg_cron_unusable_reason.
-- No table row outside pgsweep.scheduled_job is touched. Where 0007 scheduled nothing (no
-- pg_cron, or another cron database), it just drops its objects.
-- Run with:  psql -X -d "$DATABASE_URL" -f rollback/0007_scheduled_cleanup_down.sql
-- Alembic runs this same file for revision 0007 (downgrade). Safe to run again.
-- A rollback script exists to remove what its revision added.
-- squawk-ignore-file ban-drop-function, ban-drop-table
\set ON_ERROR_STOP on

BEGIN;
-- Wait at most 5 s for a lock, unless the caller chose its own lock_timeout.
DO $$ BEGIN IF current_setting('lock_timeout') = '0' THEN SET LOCAL lock_timeout = '5s'; END IF; END $$;

-- The jobs 0007 created and that still exist (a job removed since is simply gone). The cron
-- references are reached only where both tables exist, so this runs anywhere.
DO $$
DECLARE
    v_job record;
BEGIN
    IF to_regclass('pgsweep.scheduled_job') IS NOT NULL AND to_regclass('cron.job') IS NOT NULL THEN
        FOR v_job IN
            SELECT c.jobid, c.jobname FROM cron.job c
              JOIN pgsweep.scheduled_job s ON s.jobid = c.jobid AND s.jobname = c.jobname
        LOOP
            PERFORM cron.unschedule(v_job.jobid);
            RAISE NOTICE 'pgsweep: unscheduled pg_cron job % (jobid %)', v_job.jobname, v_job.jobid;
        END LOOP;
    END IF;
END $$;

DROP FUNCTION IF EXISTS pgsweep.pg_cron_unusable_reason();
DROP FUNCTION IF EXISTS pgsweep.garbage_counts(regclass);
DROP TABLE IF EXISTS pgsweep.scheduled_job;

-- Keep Alembic's version table truthful when this file runs under psql (README, "Rollback"):
-- refuse while a newer revision is recorded, else step the recorded version back to 0006.
-- Under Alembic (pgsweep.managed_by = 'alembic') Alembic records the version itself.
DO $$
BEGIN
    IF to_regclass('alembic_version') IS NOT NULL
       AND current_setting('pgsweep.managed_by', true) IS DISTINCT FROM 'alembic' THEN
        IF EXISTS (SELECT FROM alembic_version WHERE version_num > '0007') THEN
            RAISE EXCEPTION 'alembic_version records a revision newer than 0007'
                USING HINT = 'Run the newer rollback scripts first, newest first.';
        END IF;
        UPDATE alembic_version SET version_num = '0006' WHERE version_num = '0007';
    END IF;
END $$;

COMMIT;
