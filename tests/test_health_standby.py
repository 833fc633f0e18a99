"""``pgsweep health`` with a real streaming standby: the primary lists it (and its slot), the
standby reports its own replay delay, and a standby that stops leaves an inactive slot."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from pgsweep import health
from pgsweep.dsn import conninfo, with_dbname
from pgsweep_testing.localpg import SUPERUSER, LocalCluster
from tests.cli import pgsweep
from tests.pg import PgServer, connect
from tests.prometheus_server import free_port


@dataclass(frozen=True)
class Standby:
    dsn: str  # the standby, same database and credentials as the primary's DSN
    slot: str


@contextmanager
def standby_of(cluster: LocalCluster, primary_dsn: str) -> Iterator[Standby]:
    """A hot standby of the session's local cluster (pg_basebackup -R with a new physical
    slot), on its own port; stopped and its slot dropped afterwards."""
    slot = f"pgsweep_standby_{uuid.uuid4().hex[:8]}"
    data = cluster.root / f"standby-{slot}"
    port = free_port()
    password = conninfo_password(primary_dsn)
    # Over the cluster's Unix socket (trusted): no password on a command line.
    done = cluster._run(
        str(cluster.bindir / "pg_basebackup"),
        "-D", str(data), "-h", str(cluster.socket_dir), "-p", str(cluster.port), "-U", SUPERUSER,
        "-R", "-C", "-S", slot, "-X", "stream", "-c", "fast", "--no-sync",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    conf = data / "pgsweep.conf"
    text = conf.read_text().replace(f"port = {cluster.port}", f"port = {port}")
    text = text.replace(str(cluster.socket_dir), str(data))
    conf.write_text(text)
    log = data / "standby.log"
    started = cluster._run(
        str(cluster.bindir / "pg_ctl"), "-D", str(data), "start", "-w", "-t", "60", "-l", str(log)
    )
    assert started.returncode == 0, started.stderr + log.read_text()
    try:
        url = f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/postgres"
        yield Standby(with_dbname(conninfo(url), dbname_of(primary_dsn)), slot)
    finally:
        cluster._run(str(cluster.bindir / "pg_ctl"), "-D", str(data), "stop", "-m", "immediate")
        with connect(primary_dsn) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s",
                (slot,),
            )


def conninfo_password(dsn: str) -> str:
    return str(conninfo_to_dict(conninfo(dsn)).get("password", ""))


def dbname_of(dsn: str) -> str:
    return str(conninfo_to_dict(conninfo(dsn))["dbname"])


def checks(outcome: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in outcome.json()["checks"]}


def wait_for(condition: Any, what: str, limit_s: float = 30) -> Any:
    deadline = time.monotonic() + limit_s
    while not (result := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return result


def test_the_primary_lists_its_standby_and_the_standby_its_own_delay(
    pg_server: PgServer, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if pg_server.cluster is None:
        pytest.skip("needs the local cluster (PGSWEEP_TEST_SERVER=local) to make a standby")
    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE t (id int)")
    with standby_of(pg_server.cluster, fresh_db) as standby:

        def streaming() -> list[dict[str, Any]]:
            found = checks(pgsweep(capsys, "health", "--dsn", fresh_db, "--json"))
            return [
                d
                for d in found["standby_lag"]["details"]
                if d["state"] == "streaming" and d["replay_lag_bytes"] is not None  # replayed
            ]

        (listed,) = wait_for(streaming, "the standby never streamed")
        found = checks(pgsweep(capsys, "health", "--dsn", fresh_db, "--json"))
        assert found["standby_lag"]["summary"].startswith("1 standby")
        slots = {d["slot"]: d for d in found["replication_slots"]["details"]}
        assert slots[standby.slot]["active"] is True
        assert listed["sync_state"] == "async"

        # The standby stops replaying while the primary writes: its own check goes off.
        with connect(standby.dsn) as replica:
            with connect(fresh_db) as conn:
                conn.execute("INSERT INTO t VALUES (0)")
            wait_for(
                lambda: replica.execute("SELECT count(*) FROM t").fetchone() == (1,),
                "the standby never replayed the first insert",
            )
            replica.execute("SELECT pg_wal_replay_pause()")
            with connect(fresh_db) as conn:
                conn.execute("INSERT INTO t SELECT generate_series(1, 100)")
            wait_for(
                lambda: replica.execute(
                    "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
                ).fetchone()[0],  # type: ignore[index]
                "the standby never received the insert",
            )
            time.sleep(0.05)
            behind = pgsweep(
                capsys, "health", "--dsn", standby.dsn, "--json",
                "--standby-lag-warning", "1ms", "--standby-lag-critical", "1d",
            )  # fmt: skip
            replica.execute("SELECT pg_wal_replay_resume()")
        lag = checks(behind)["standby_lag"]
        assert lag["status"] == health.WARNING
        assert lag["summary"].startswith("this server is a standby, replaying")
        assert lag["summary"].endswith("replay is PAUSED")
        assert lag["details"][0]["replay_lag_bytes"] > 0
        assert checks(behind)["connection"]["details"][0]["standby"] is True

    # The standby is gone, its slot is not: an inactive slot is a warning.
    with connect(fresh_db) as conn:
        conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (standby.slot,))
    try:
        found = checks(pgsweep(capsys, "health", "--dsn", fresh_db, "--json"))
        assert found["replication_slots"]["status"] == health.WARNING
        assert f"inactive: {standby.slot}" in found["replication_slots"]["summary"]
    finally:
        with connect(fresh_db) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (standby.slot,))
