"""A throwaway PostgreSQL cluster in a temporary directory.

Used by the test-suite and the demo when neither ``DATABASE_URL`` nor a Docker engine is at hand.
Everything about it trades durability for speed (``fsync=off`` and friends): the data directory
is deleted on :meth:`LocalCluster.stop` and at interpreter exit.

``initdb`` and ``postgres`` refuse to run as root, so when we are root the directory is handed to
the ``postgres`` OS user and every server binary runs through ``runuser -u postgres --``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

DEFAULT_BINDIR = "/usr/lib/postgresql/15/bin"
SUPERUSER = "postgres"
_OS_USER_WHEN_ROOT = "postgres"
_START_TIMEOUT_S = 60
_LOG_TAIL_LINES = 40


class LocalClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message ends with its log."""


def _bindir() -> Path:
    return Path(os.environ.get("PG_BINDIR") or DEFAULT_BINDIR)


def _free_port() -> int:
    # Bind-and-release is racy in theory; start() retries once on a bind failure to cover it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class LocalCluster:
    """A private PostgreSQL server on 127.0.0.1 that lives as long as this object.

    >>> with LocalCluster() as pg:            # doctest: +SKIP
    ...     psycopg.connect(pg.dsn()).execute("select 1")
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        preload_cron: bool = True,
        cron_database: str = "postgres",
        bindir: str | os.PathLike[str] | None = None,
        base_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._requested_port = port
        self._preload_cron = preload_cron
        self.cron_database = cron_database
        self.bindir = Path(bindir) if bindir is not None else _bindir()
        self._base_dir = base_dir
        self._password = secrets.token_urlsafe(24)
        self._port: int | None = None
        self._root: Path | None = None
        self._running = False
        self._run_as: list[str] = self._runuser_prefix()
        self.has_pg_cron = False
        self.has_plpgsql_check = False
        self._primary: LocalCluster | None = None

    # -- public surface -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalClusterError("cluster not started")
        return self._port

    @property
    def root(self) -> Path:
        """The temporary directory holding data, socket, log."""
        if self._root is None:
            raise LocalClusterError("cluster not started")
        return self._root

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def running(self) -> bool:
        return self._running

    def dsn(self, dbname: str = "postgres") -> str:
        """libpq URL for the superuser over TCP; contains the password, so never print it."""
        return (
            f"postgresql://{SUPERUSER}:{quote(self._password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}"
        )

    def start(self) -> LocalCluster:
        if self._running:
            return self
        if not (self.bindir / "postgres").exists():
            raise LocalClusterError(
                f"no PostgreSQL server binaries in {self.bindir}: install PostgreSQL 15's server"
                " (Debian: postgresql-15), or set PG_BINDIR to the folder that holds postgres,"
                " initdb and pg_ctl"
            )
        self._root = self._make_root()
        atexit.register(self.stop)
        try:
            if self._primary is not None:
                self._base_backup(self._primary)
            else:
                self._initdb()
            self.has_plpgsql_check = self._extension_available("plpgsql_check")
            self.has_pg_cron = self._preload_cron and self._library_available("pg_cron")
            # A port picked by _free_port can be grabbed by someone else before the postmaster
            # binds it; one retry with a new port makes that race practically harmless.
            attempts = 1 if self._requested_port is not None else 2
            for attempt in range(attempts):
                self._port = self._requested_port or _free_port()
                self._write_config()
                if self._pg_ctl_start():
                    break
                if attempt == attempts - 1 or "could not bind" not in _tail(self.log_path):
                    # The directory (and log) is removed below, so the tail goes in the message.
                    raise LocalClusterError(
                        "PostgreSQL failed to start; server log tail:\n" + _tail(self.log_path)
                    )
            self._running = True
        except BaseException:
            self.stop()
            raise
        return self

    @classmethod
    def standby_of(cls, primary: LocalCluster, *, base_dir: str | None = None) -> LocalCluster:
        """A streaming standby of ``primary`` (``pg_basebackup -R``), not started yet: call
        :meth:`start`. Same superuser password; its own port and directory."""
        standby = cls(preload_cron=False, bindir=primary.bindir, base_dir=base_dir)
        standby._password = primary._password
        standby._primary = primary
        return standby

    @property
    def is_standby(self) -> bool:
        return self._primary is not None

    def promote(self) -> None:
        """Make a standby a primary (``pg_ctl promote``), waiting until it accepts writes."""
        result = self._pg_ctl("promote", "-w", "-t", str(_START_TIMEOUT_S))
        if result.returncode != 0:
            raise LocalClusterError(f"pg_ctl promote failed: {result.stderr.strip()}")

    def kill(self) -> None:
        """SIGKILL the postmaster and every process it started: a crash, no shutdown at all."""
        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        children = _children(pid)
        for victim in [pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while any(_alive(p) for p in [pid, *children]) and time.monotonic() < deadline:
            time.sleep(0.05)
        # A killed postmaster may stay a zombie where nothing reaps orphans (PID 1 of a
        # container), and a zombie's pid still answers kill(pid, 0): its lock file would then
        # keep the next start out. Every process of the server is gone, so the file is stale.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        for lock in self.socket_dir.glob(".s.PGSQL.*.lock"):
            lock.unlink(missing_ok=True)
        self._running = False

    def start_again(self) -> None:
        """Start a stopped or killed cluster on the same port and data (crash recovery runs)."""
        if not self._pg_ctl_start():
            raise LocalClusterError("PostgreSQL failed to start again:\n" + _tail(self.log_path))
        self._running = True

    def stop_server(self) -> None:
        """Stop the server (fast shutdown) and keep its directory (:meth:`start_again`)."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT_S))
        self._running = False

    def restart(self) -> None:
        """Restart the postmaster on the same port (drops every connection)."""
        if not self._running:
            raise LocalClusterError("cluster not running")
        result = self._pg_ctl(
            "restart", "-m", "fast", "-w", "-t", str(_START_TIMEOUT_S), "-l", str(self.log_path)
        )
        if result.returncode != 0:
            raise LocalClusterError(
                f"pg_ctl restart failed: {result.stderr.strip()}\nlog tail:\n{_tail(self.log_path)}"
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory; safe to call twice."""
        atexit.unregister(self.stop)
        if self._root is None:
            return
        try:
            if self._running or (self.data_dir / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(_START_TIMEOUT_S))
        finally:
            self._running = False
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _runuser_prefix() -> list[str]:
        if os.geteuid() != 0:
            return []
        try:
            pwd.getpwnam(_OS_USER_WHEN_ROOT)
        except KeyError as exc:
            raise LocalClusterError(
                "running as root, but there is no 'postgres' OS user to run the server as"
            ) from exc
        return ["runuser", "-u", _OS_USER_WHEN_ROOT, "--"]

    def _make_root(self) -> Path:
        root = Path(tempfile.mkdtemp(prefix="pgsweep-pg-", dir=self._base_dir))
        (root / "sock").mkdir()
        if self._run_as:
            entry = pwd.getpwnam(_OS_USER_WHEN_ROOT)
            for path in (root, root / "sock"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        return root

    def _env(self) -> dict[str, str]:
        # Caller's PG* variables (PGDATA, PGPORT, PGHOST, …) must not steer our private server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._run_as, *argv],
            env=self._env(),
            cwd=self.root,  # runuser keeps the cwd; root's home may be unreadable to postgres
            capture_output=True,
            text=True,
            check=False,
            timeout=_START_TIMEOUT_S + 30,
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), *args)

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self._password + "\n")
        pwfile.chmod(0o600)
        if self._run_as:
            entry = pwd.getpwnam(_OS_USER_WHEN_ROOT)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            result = self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # throwaway: skipping fsync saves seconds per start
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalClusterError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _base_backup(self, primary: LocalCluster) -> None:
        # -R writes standby.signal and primary_conninfo (with the password of this DSN);
        # -X stream fetches the WAL written meanwhile; no -c fast would wait for a checkpoint.
        result = self._run(
            str(self.bindir / "pg_basebackup"),
            "-D",
            str(self.data_dir),
            "-d",
            primary.dsn(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        if result.returncode != 0:
            raise LocalClusterError(f"pg_basebackup failed:\n{result.stdout}\n{result.stderr}")

    def _write_config(self) -> None:
        settings: dict[str, str] = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": "100",
            # Durability off: this cluster is deleted after use, so speed wins.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "logging_collector": "off",  # pg_ctl -l already sends stderr to our log file
            "log_min_messages": "warning",
        }
        if self.has_pg_cron:
            settings["shared_preload_libraries"] = "'pg_cron'"
            settings["cron.database_name"] = "'" + self.cron_database.replace("'", "''") + "'"
        # A conf.d-style include keeps initdb's postgresql.conf pristine and lets a retry with a
        # new port simply overwrite our file.
        conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'pgsweep.conf'\n"
        if include not in conf.read_text():
            with conf.open("a") as fh:
                fh.write("\n" + include)
        (self.data_dir / "pgsweep.conf").write_text(
            "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        if self._run_as:
            entry = pwd.getpwnam(_OS_USER_WHEN_ROOT)
            os.chown(self.data_dir / "pgsweep.conf", entry.pw_uid, entry.pw_gid)

    def _pg_ctl_start(self) -> bool:
        result = self._pg_ctl("start", "-w", "-t", str(_START_TIMEOUT_S), "-l", str(self.log_path))
        return result.returncode == 0

    def _pg_config(self, flag: str) -> Path:
        pg_config = self.bindir / "pg_config"
        exe = str(pg_config) if pg_config.exists() else "pg_config"
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [exe, flag], capture_output=True, text=True, check=True, timeout=30
            ).stdout.strip()
            if out:
                return Path(out)
        raise LocalClusterError(f"pg_config {flag} failed (looked for {exe})")

    def _library_available(self, name: str) -> bool:
        return (self._pg_config("--pkglibdir") / f"{name}.so").exists()

    def _extension_available(self, name: str) -> bool:
        return (self._pg_config("--sharedir") / "extension" / f"{name}.control").exists()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found
