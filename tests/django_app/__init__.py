"""A minimal Django project with django-oauth-toolkit (tests/test_django_cleanup.py).

Its settings read the database from ``PGSWEEP_DJANGO_DSN`` (a libpq connection string), so the
test runs Django's own commands (``manage.py migrate``, ``clearsessions``, ``cleartokens``) and
its filler in subprocesses against the scratch database it gives them.
"""
