"""Fill the test project's database through Django's own APIs, from a fixed seed.

``python tests/django_app/fill.py SEED`` (with ``PGSWEEP_DJANGO_DSN``) writes sessions with
``SessionStore`` and OAuth rows with django-oauth-toolkit's models, then prints what it wrote as
JSON. Every timestamp is relative to the moment it runs and stays at least 10 minutes away from
each cutoff ``clearsessions`` and ``cleartokens`` apply (now, and now minus
``REFRESH_TOKEN_EXPIRE_SECONDS``), so a cleanup run a few minutes later sees the same garbage.

The mix: access tokens expired more than a day ago, expired within the day, and live; each with
no refresh token, a live one or a revoked one, some with an ID token attached, some issued from a
revoked refresh token (``source_refresh_token``); refresh tokens whose access token is gone
(NULL), live or revoked; ID tokens of no access token; grants expired and live.
"""

from __future__ import annotations

import json
import os
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

MARGIN = timedelta(minutes=10)
SESSIONS = 600
USERS = 20
ACCESS_TOKENS = 900
ORPHAN_REFRESH_TOKENS = 60
LONE_ID_TOKENS = 120
GRANTS = 300


def main(seed: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

    rnd = random.Random(seed)  # noqa: S311 (test data from a fixed seed, not secrets)
    now: datetime = timezone.now()
    keep = timedelta(seconds=settings.REFRESH_TOKEN_EXPIRE_SECONDS)

    def before(start: datetime, at_most: timedelta) -> datetime:
        """A moment between start - at_most and start - MARGIN."""
        return start - MARGIN - (at_most - MARGIN) * rnd.random()

    def after(at_most: timedelta) -> datetime:
        return now + MARGIN + (at_most - MARGIN) * rnd.random()

    def revoked_at() -> datetime:
        """Revoked within the last day or before it (clear of now - keep too: with reuse
        protection, or a grace period of a day, cleartokens cuts revoked tokens there)."""
        if rnd.random() < 0.5:
            return before(now, keep - MARGIN)
        return before(now - keep, timedelta(days=2))

    def token() -> str:
        return f"{rnd.getrandbits(128):032x}"

    written: dict[str, int] = {}
    with transaction.atomic():
        for i in range(SESSIONS):
            store = SessionStore()
            store["visit"] = i
            store["cart"] = [rnd.randrange(100) for _ in range(rnd.randrange(4))]
            expired = rnd.random() < 0.35
            store.set_expiry(before(now, timedelta(days=30)) if expired else after(timedelta(14)))
            store.create()
        written["sessions"] = SESSIONS

        users = [User.objects.create_user(f"user{i}", password=token()) for i in range(USERS)]
        apps = [
            Application.objects.create(
                name=f"app{i}",
                user=users[i],
                client_type=Application.CLIENT_CONFIDENTIAL,
                authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
                redirect_uris="https://example.org/callback",
                client_secret=token(),
                hash_client_secret=False,
            )
            for i in range(3)
        ]

        def owner() -> dict[str, Any]:
            return {"user": rnd.choice(users), "application": rnd.choice(apps)}

        revoked_refresh: list[Any] = []
        for _ in range(ACCESS_TOKENS):
            age = rnd.random()
            if age < 0.3:  # expired more than REFRESH_TOKEN_EXPIRE_SECONDS ago
                expires = before(now - keep, timedelta(days=5))
            elif age < 0.6:  # expired within it
                expires = before(now, keep - MARGIN)
            else:
                expires = after(timedelta(hours=10))
            who = owner()
            id_token = None
            if rnd.random() < 0.4:
                id_token = IDToken.objects.create(expires=expires, scope="openid", **who)
            access = AccessToken.objects.create(
                token=token(), expires=expires, scope="read", id_token=id_token, **who
            )
            refresh = rnd.random()
            if refresh < 0.35:
                continue
            revoked = revoked_at() if refresh >= 0.75 else None
            row = RefreshToken.objects.create(
                token=token(), access_token=access, revoked=revoked, **who
            )
            if revoked is not None:
                revoked_refresh.append(row)

        # Tokens issued by a refresh: the new access token names the (revoked) refresh token
        # it came from, which cleartokens deletes and the ORM's SET_NULL forgets.
        fresh = list(AccessToken.objects.filter(source_refresh_token__isnull=True))
        rnd.shuffle(fresh)
        for access, source in zip(fresh, revoked_refresh[::2], strict=False):
            access.source_refresh_token = source
            access.save(update_fields=["source_refresh_token"])

        for i in range(ORPHAN_REFRESH_TOKENS):
            revoked = revoked_at() if i % 3 == 0 else None
            RefreshToken.objects.create(token=token(), revoked=revoked, **owner())

        for _ in range(LONE_ID_TOKENS):
            lone_expired = rnd.random() < 0.6
            expires = before(now, timedelta(days=5)) if lone_expired else after(timedelta(1))
            IDToken.objects.create(expires=expires, scope="openid", **owner())

        for i in range(GRANTS):
            expires = before(now, timedelta(days=10)) if rnd.random() < 0.4 else after(
                timedelta(hours=1)
            )
            Grant.objects.create(
                code=f"code{i}-{token()}",
                expires=expires,
                redirect_uri="https://example.org/callback",
                **owner(),
            )
    written.update(
        access_tokens=AccessToken.objects.count(),
        refresh_tokens=RefreshToken.objects.count(),
        id_tokens=IDToken.objects.count(),
        grants=Grant.objects.count(),
    )
    return written


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_app.settings")
    print(json.dumps(main(int(sys.argv[1]))))
