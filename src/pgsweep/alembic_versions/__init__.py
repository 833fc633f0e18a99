"""The pgsweep engine as an Alembic branch (label ``pgsweep``) an app's own chain can include.

An app that migrates with Alembic adds this folder to its ``version_locations``
(:data:`pgsweep.alembic_branch.VERSION_LOCATION`) and makes its first revision that registers a
rule depend on the release it needs (``depends_on = "pgsweep_1_0"``); ``alembic upgrade heads``
then installs the engine before that revision, and ``alembic downgrade`` removes it after.
Each revision here runs one engine release file, the same one ``psql -f`` and
``pgsweep install`` run.
"""
