"""Where an app's Alembic finds the engine's branch (see :mod:`pgsweep.alembic_versions`).

In the app's ``alembic.ini``::

    version_locations = %(here)s/migrations/versions pgsweep:alembic_versions

or in its ``env.py``/``Config``: ``config.set_main_option("version_locations", …)`` with
:data:`VERSION_LOCATION`. Its revisions then depend on ``pgsweep_1_0`` (or the label
``pgsweep@head`` to follow the newest release the installed pgsweep ships).
"""

from __future__ import annotations

from pathlib import Path

# Alembic reads "package:folder" as a folder inside an installed package.
VERSION_LOCATION = "pgsweep:alembic_versions"
BRANCH_LABEL = "pgsweep"


def version_location_path() -> Path:
    """The same folder as a file system path (for configs that take paths only)."""
    return Path(__file__).resolve().parent / "alembic_versions"
