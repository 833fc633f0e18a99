"""pgsweep: Alembic migrations and PL/pgSQL for token-table lifecycle in PostgreSQL."""

__version__ = "0.1.0"
