"""Test support for pgsweep, kept out of the shipped runtime package (and out of the wheel).

``localpg``: a throwaway local PostgreSQL cluster (the test-suite, ``make demo``, ``make bench``
and ``make manifest`` start one); ``demo``: ``make demo``. Importable from a source checkout's
virtual environment (``make venv``); the wheel carries only ``pgsweep``.
"""
