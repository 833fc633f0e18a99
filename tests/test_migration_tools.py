"""Migration tools that run each file inside a transaction of their own (Flyway, sqlx,
golang-migrate, Django's RunSQL) install and remove the engine with the ``*.embed.sql`` files,
sent as one multi-statement query the way they send a migration."""

from __future__ import annotations

from pgsweep import engine
from tests.pg import connect


def run_as_a_tool_would(dsn: str, name: str) -> None:
    text = engine.release_file(engine.latest(), name).read_text(encoding="utf-8")
    with connect(dsn, autocommit=False) as conn:
        conn.execute(text)  # one query, many statements, in the tool's transaction
        conn.execute("INSERT INTO tool_history VALUES (%s)", (name,))
        conn.commit()


def test_a_tool_with_its_own_transaction_installs_and_removes_the_engine(fresh_db: str) -> None:
    with connect(fresh_db) as conn:
        conn.execute("CREATE TABLE tool_history (script text)")
        conn.execute("CREATE TABLE jobs (id bigserial PRIMARY KEY, done_at timestamptz)")
        conn.execute("CREATE INDEX ON jobs (done_at)")
    run_as_a_tool_would(fresh_db, "install.embed.sql")
    run_as_a_tool_would(fresh_db, "install.embed.sql")  # a second run changes nothing
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT pgsweep.version()").fetchone() == (engine.latest(),)
        conn.execute("SELECT pgsweep.add_rule('jobs', 'done_at', '1 day')")
        conn.execute("INSERT INTO jobs (done_at) VALUES (now() - interval '2 days'), (now())")
        assert conn.execute("CALL pgsweep.sweep()").fetchone() == (1,)
        conn.execute("SELECT pgsweep.remove_rule('jobs')")
    run_as_a_tool_would(fresh_db, "uninstall.embed.sql")
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regnamespace('pgsweep')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
        history = conn.execute("SELECT script FROM tool_history").fetchall()
    assert [h[0] for h in history] == ["install.embed.sql"] * 2 + ["uninstall.embed.sql"]
