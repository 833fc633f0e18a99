"""Load every session left in the database through Django's ``SessionStore``.

``python tests/django_app/load_sessions.py`` prints JSON: per session key, the data
``SessionStore(session_key).load()`` gives back (an expired or undecodable session loads as
``{}``, which is what the test looks for).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def main() -> dict[str, Any]:
    import django

    django.setup()
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    keys = Session.objects.values_list("session_key", flat=True)
    return {key: SessionStore(session_key=key).load() for key in keys}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_app.settings")
    print(json.dumps(main()))
