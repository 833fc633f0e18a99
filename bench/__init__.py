"""``make bench``: pgsweep's cleanup, triggers and deck progress, measured side by side against
the plain approach on the same data (see docs/performance.md)."""
