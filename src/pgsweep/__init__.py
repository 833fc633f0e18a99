"""pgsweep: an expiry engine for any app's PostgreSQL tables, and the command that runs it.

The engine (PL/pgSQL in schema ``pgsweep``, versioned releases in ``engine/releases``) deletes
rows past their rule in short batches and reports what is expired; ``pgsweep`` installs,
upgrades, runs, schedules and checks it, and never touches an app's schema. Matcha Time is the
reference app: its Alembic chain has its own command, ``matcha-time``.
"""

__version__ = "0.1.0"
