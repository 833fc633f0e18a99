"""Where the migration files live: in a checkout, or inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "_data"
_CHECKOUT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """The folder holding alembic.ini, migrations/, sql/, rollback/ and engine/."""
    for root in (_PACKAGED, _CHECKOUT):
        if (root / "alembic.ini").is_file() and (root / "migrations").is_dir():
            return root
    raise FileNotFoundError(
        "pgsweep's migration files are missing: expected alembic.ini and migrations/ in "
        f"{_PACKAGED} (installed wheel) or {_CHECKOUT} (source checkout)"
    )


def alembic_ini() -> Path:
    return data_root() / "alembic.ini"


def sql_dir() -> Path:
    return data_root() / "sql"


def rollback_dir() -> Path:
    return data_root() / "rollback"


def engine_dir() -> Path:
    """The engine: ``src/`` (the current definition of every object) and ``releases/``."""
    return data_root() / "engine"
