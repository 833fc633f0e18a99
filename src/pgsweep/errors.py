"""The errors a pgsweep command reports to an operator, each with its own exit status.

Every failure a user can cause or meet (a wrong password, a server that is down, a database at a
revision this code does not know, an invalid cron expression) is one of these, with a one-line
message that never contains a password. The CLI prints the message and exits with the class's
``exit_code``; library callers catch :class:`PgsweepError`.

| exit | meaning |
|---|---|
| 0 | success |
| 1 | the command ran and found a problem (verify is red), or the database raised an error |
| 2 | usage: bad option value, unknown target revision, invalid cron expression or duration |
| 3 | cannot connect: server unreachable, database missing, connection refused or timed out |
| 4 | authentication failed (wrong password, no password, role not allowed) |
| 5 | the engine is missing or too old: ``pgsweep install`` or ``pgsweep upgrade`` first |
| 6 | the database is at a revision this code does not know (ahead of this code) |
| 7 | a lock was not granted within lock_timeout after every retry |
| 8 | pg_cron is not usable for the requested scheduling |
| 130 | interrupted (Ctrl-C): the message says where the database stands |
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANNOT_CONNECT = 3
EXIT_AUTHENTICATION = 4
EXIT_BEHIND = 5
EXIT_UNKNOWN_REVISION = 6
EXIT_LOCK_TIMEOUT = 7
EXIT_CRON_UNAVAILABLE = 8
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class PgsweepError(Exception):
    """A failure to report in one line; ``exit_code`` is the CLI's exit status for it."""

    exit_code = EXIT_FAILED


class UsageError(PgsweepError):
    exit_code = EXIT_USAGE


class CannotConnect(PgsweepError):
    exit_code = EXIT_CANNOT_CONNECT


class AuthenticationFailed(PgsweepError):
    exit_code = EXIT_AUTHENTICATION


class DatabaseBehind(PgsweepError):
    exit_code = EXIT_BEHIND


class UnknownDatabaseRevision(PgsweepError):
    exit_code = EXIT_UNKNOWN_REVISION


class LockNotGranted(PgsweepError):
    exit_code = EXIT_LOCK_TIMEOUT


class CronUnavailable(PgsweepError):
    exit_code = EXIT_CRON_UNAVAILABLE


class Interrupted(PgsweepError):
    """Stopped by Ctrl-C (SIGINT); the message says what state the work was left in."""

    exit_code = EXIT_INTERRUPTED
