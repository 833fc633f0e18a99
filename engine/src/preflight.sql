-- Before anything changes: an engine that an application's own migrations embedded (its rules
-- table without pgsweep.release: Matcha Time's revisions 0006-0008) is upgraded by that
-- application's chain, which moves its own objects out of the schema first and then runs this
-- file with pgsweep.adopt_embedded on. Run on its own, this file would take those objects' grants.
DO $$
BEGIN
    IF to_regclass('pgsweep.expiry_rule') IS NOT NULL AND to_regclass('pgsweep.release') IS NULL
       AND current_setting('pgsweep.adopt_embedded', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'this database has an engine embedded by an application''s migrations'
            USING HINT = 'Upgrade it with that application''s migration chain'
                         ' (Matcha Time: pgsweep upgrade, or alembic upgrade head).';
    END IF;
END $$;
-- 1.4: an engine created as the extension (CREATE EXTENSION pgsweep, docs/extension.md) is
-- upgraded only by ALTER EXTENSION pgsweep UPDATE, whose scripts are built from this file and
-- set pgsweep.extension_script = on for their own statements. This file run with psql (or by a
-- migration tool) over it would change the extension's objects behind its back.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname = 'pgsweep')
       AND current_setting('pgsweep.extension_script', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'the pgsweep engine here is the extension: its plain install script'
                        ' would change the extension''s objects behind its back'
            USING ERRCODE = 'object_in_use',
                  HINT = 'Upgrade it with ALTER EXTENSION pgsweep UPDATE (docs/extension.md).';
    END IF;
END $$;
