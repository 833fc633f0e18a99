"""How the ``pgsweep`` command behaves at its edges: a reader that goes away, Ctrl-C, bad values
caught before any output, JSON for every outcome, tables and colour only on a terminal, the
session's application_name, configuration from the environment and a file, completion."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from pgsweep import cli, errors, migrate
from pgsweep.dsn import conninfo
from pgsweep.output import format_bytes, plural
from tests.cli import Outcome, matcha_time, matcha_time_process, pgsweep, pgsweep_process
from tests.pg import connect
from tests.roles import temporary_roles

PGSWEEP = [sys.executable, "-m", "pgsweep"]
MATCHA_TIME = [sys.executable, "-m", "pgsweep.matcha_cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without anything that would choose a connection or a format."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PGAPPNAME", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")
        and not k.startswith("PGSWEEP_")
    }
    env.update(extra)
    return env


def with_closed_reader(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run pgsweep with a stdout pipe whose reader has already gone: every write meets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [*PGSWEEP, *argv],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            env=clean_env(),
            check=False,
        )
    finally:
        os.close(write_end)


def on_a_terminal(
    *argv: str, env: dict[str, str], stderr_too: bool = False, program: Sequence[str] = PGSWEEP
) -> tuple[int, str]:
    """Run pgsweep (or ``program``) with stdout (and stderr) on a pseudo-terminal; its exit
    status and what it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*program, *argv],
        stdout=follower,
        stderr=follower if stderr_too else subprocess.PIPE,
        env=env,
        text=False,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = process.wait(timeout=120)
    return code, b"".join(chunks).decode()


def wait_for_session(dsn: str, query: str, params: tuple[object, ...]) -> tuple[object, ...]:
    """Poll pg_stat_activity until ``query`` finds a row (a state to reach, not a timing)."""
    deadline = time.monotonic() + 60
    with connect(dsn) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(query, params).fetchone()
            if row is not None:
                return tuple(row)
            time.sleep(0.05)
    raise AssertionError(f"no session matched {query!r} {params!r}")


def assert_clean(done: Outcome | subprocess.CompletedProcess[str]) -> None:
    out = done.out if isinstance(done, Outcome) else (done.stdout or "")
    err = done.err if isinstance(done, Outcome) else (done.stderr or "")
    for text in (out, err):
        assert "Traceback" not in text
        assert "Error:" not in text  # no Python class name such as BrokenPipeError: …


# --- a reader that goes away -------------------------------------------------------------------


def test_verify_into_a_closed_pipe_ends_quietly_with_its_own_verdict(head_db: str) -> None:
    green = with_closed_reader("verify", "--no-cron", "--dsn", head_db)
    assert (green.returncode, green.stderr) == (0, "")
    with connect(head_db) as conn:
        conn.execute("ALTER TABLE refresh_tokens DISABLE TRIGGER trg_refresh_tokens_cleanup")
    try:
        red = with_closed_reader("verify", "--no-cron", "--dsn", head_db)
    finally:
        with connect(head_db) as conn:
            conn.execute("ALTER TABLE refresh_tokens ENABLE TRIGGER trg_refresh_tokens_cleanup")
    assert (red.returncode, red.stderr) == (errors.EXIT_FAILED, "")


def test_run_stops_when_its_reader_goes_away(head_db: str) -> None:
    # Without a reader the loop would run for an hour between sweeps; it stops at once instead.
    done = with_closed_reader("run", "--every", "1h", "--json", "--dsn", head_db)
    assert (done.returncode, done.stderr) == (0, "")
    piped = subprocess.run(
        [
            *("bash", "-c", '"$@" | head -2; echo "exit ${PIPESTATUS[0]}" >&2', "bash"),
            *(*PGSWEEP, "run", "--every", "10ms", "--json", "--dsn", head_db),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )
    events = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [e["event"] for e in events] == ["start", "run"]
    assert piped.stderr == "exit 0\n"


# --- Ctrl-C --------------------------------------------------------------------------------------


def test_ctrl_c_while_an_upgrade_waits_for_a_lock_is_one_line_and_exit_130(fresh_db: str) -> None:
    migrate.upgrade(fresh_db, "0005")
    with connect(fresh_db, autocommit=False) as app:
        app.execute("LOCK TABLE refresh_tokens IN ROW EXCLUSIVE MODE")
        process = subprocess.Popen(
            [*MATCHA_TIME, "upgrade", "--lock-timeout", "600000", "--dsn", fresh_db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        # Its own session name in pg_stat_activity, waiting on the app's lock.
        wait_for_session(
            fresh_db,
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'",
            ("matcha-time upgrade",),
        )
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        app.rollback()
    assert process.returncode == cli.EXIT_INTERRUPTED
    assert err.startswith("matcha-time upgrade: error: interrupted; the database is at 0005")
    assert len(err.splitlines()) == 1
    assert "Traceback" not in out
    assert migrate.current(fresh_db) in ("0005", "0006")


# --- application_name ------------------------------------------------------------------------


@pytest.fixture
def sleeping_runner(head_db: str) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=60)


def test_every_session_is_named_after_its_command_unless_the_dsn_names_it(
    head_db: str, sleeping_runner: list[subprocess.Popen[str]]
) -> None:
    for dsn, expected in (
        (head_db, "pgsweep run"),
        (conninfo(head_db, application_name="matcha-ops"), "matcha-ops"),
    ):
        sleeping_runner.append(
            subprocess.Popen(
                [*PGSWEEP, "run", "--every", "1h", "--dsn", dsn],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                env=clean_env(),
            )
        )
        pid = sleeping_runner[-1].pid
        row = wait_for_session(
            head_db,
            "SELECT application_name FROM pg_stat_activity WHERE application_name = %s",
            (expected,),
        )
        assert row == (expected,), pid


# --- bad values, wrong connections, permissions ----------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "--every", "5", "--max-runs", "0"], "--max-runs: must be a positive"),
        (["run", "--every", "99999999999d"], "is too long"),
        (["run", "--every", "5", "--batch-size", "0"], "--batch-size: must be a positive"),
        (["run"], "the following arguments are required: --every"),
        (["cleanup", "--max-share", "150%"], "--max-share: must be between 0 and 1"),
        (["schedule", "--history-days", "-1"], "--history-days: must be 0 or more"),
        (["verify", "--bogus"], "unrecognized arguments: --bogus"),
        (["nonsense"], "invalid choice: 'nonsense'"),
    ],
)
def test_bad_values_are_usage_errors_before_any_output(
    head_db: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    done = pgsweep(capsys, *argv, "--dsn", head_db)
    assert done.code == errors.EXIT_USAGE
    assert done.out == ""  # nothing printed first ("sweeping…", a start event)
    assert says in done.err.splitlines()[0]
    assert_clean(done)
    as_json = pgsweep(capsys, *argv, "--dsn", head_db, "--json")
    assert as_json.code == errors.EXIT_USAGE
    assert len(as_json.out.splitlines()) == 1
    document = as_json.json()
    assert (document["ok"], document["exit_code"]) == (False, errors.EXIT_USAGE)
    assert says in document["error"]
    assert as_json.err == ""


@pytest.mark.parametrize(
    ("dsn", "says"),
    [
        ("not a dsn", "not a valid connection string not a dsn"),
        ("postgresql://someone:s3cret@127.0.0.1:abc/matcha", "invalid port 'abc'"),
        ("host=127.0.0.1 port=99999 password=s3cret", "invalid port '99999'"),
    ],
)
def test_a_malformed_connection_string_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], dsn: str, says: str
) -> None:
    done = matcha_time(capsys, "current", "--dsn", dsn)
    assert done.code == errors.EXIT_USAGE, done.err
    assert says in done.err
    assert "s3cret" not in done.err
    assert "resolve host" not in done.err


def test_a_permission_error_is_said_in_words(
    head_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with temporary_roles(head_db, "nobody") as roles:
        role = roles["nobody"]
        with connect(head_db) as conn:
            conn.execute(f'GRANT USAGE ON SCHEMA pgsweep TO "{role.name}"')
            conn.execute(f'GRANT SELECT ON pgsweep.expiry_rule TO "{role.name}"')
        done = pgsweep(capsys, "status", "--dsn", role.dsn)
    assert done.code == errors.EXIT_FAILED
    assert done.err.startswith("pgsweep status: error: permission denied for ")
    assert "InsufficientPrivilege" not in done.err
    assert role.password not in done.err


# --- JSON ------------------------------------------------------------------------------------


def test_every_success_document_says_ok_and_run_events_say_when(
    head_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["current"], ["status"], ["cleanup"], ["cleanup", "--dry-run"]):
        done = pgsweep(capsys, *argv, "--json", "--dsn", head_db)
        assert done.code == 0, done.out
        assert done.json()["ok"] is True, argv
    verified = pgsweep(capsys, "verify", "--no-cron", "--failed-only", "--json", "--dsn", head_db)
    assert (verified.json()["ok"], verified.json()["checks"]) == (True, [])

    run = pgsweep(capsys, "run", "--every", "1s", "--max-runs", "1", "--json", "--dsn", head_db)
    events = [json.loads(line) for line in run.out.splitlines()]
    assert [e["event"] for e in events] == ["start", "run", "stopped"]
    assert events[-1]["ok"] is True
    for event in events:
        at = dt.datetime.fromisoformat(event["at"])
        assert at.utcoffset() == dt.timedelta(0)
        assert abs(dt.datetime.now(dt.UTC) - at) < dt.timedelta(hours=1)


# --- human output ------------------------------------------------------------------------------


def test_human_output_counts_in_words_and_sizes_without_rounding_down(
    head_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert format_bytes(int(1.9 * 1024 * 1024)) == "1.9 MB"
    assert format_bytes(1023) == "1,023 bytes"
    assert format_bytes(1) == "1 byte"
    assert format_bytes(8192) == "8.0 kB"
    assert (plural(1, "row"), plural(2, "row"), plural(0, "run")) == ("1 row", "2 rows", "0 runs")
    run = pgsweep(capsys, "run", "--every", "1s", "--max-runs", "1", "--dsn", head_db)
    assert run.out.splitlines()[-1].endswith("stopped after 1 run")
    assert "deleted 0 rows" in run.out
    verified = pgsweep(capsys, "verify", "--no-cron", "--dsn", head_db)
    assert " None" not in verified.out  # a scan of neither index nor table is named alone
    assert "planner picks" in verified.out


def test_verify_failed_only_shows_the_failures_and_the_verdict(
    head_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect(head_db) as conn:
        conn.execute("ALTER TABLE refresh_tokens DISABLE TRIGGER trg_refresh_tokens_cleanup")
    try:
        done = pgsweep(capsys, "verify", "--no-cron", "--failed-only", "--dsn", head_db)
    finally:
        with connect(head_db) as conn:
            conn.execute("ALTER TABLE refresh_tokens ENABLE TRIGGER trg_refresh_tokens_cleanup")
    assert done.code == errors.EXIT_FAILED
    lines = done.out.splitlines()
    assert lines[0].startswith("FAIL  trigger refresh_tokens.trg_refresh_tokens_cleanup")
    assert len(lines) == 2
    database = conninfo_to_dict(conninfo(head_db))["dbname"]
    assert lines[-1].startswith(f"verify {database}: 1 of ")
    assert lines[-1].endswith(" checks failed")


def test_a_terminal_gets_tables_and_colour_a_pipe_gets_plain_text(head_db: str) -> None:
    env = clean_env(COLUMNS="160", LINES="50", TERM="xterm-256color")
    code, shown = on_a_terminal("status", "--dsn", head_db, env=env)
    assert code == 0
    assert "table / rule" in shown  # the table's header
    assert "─" in shown  # its rule line
    assert "\x1b[" in shown  # styled
    code, plain = on_a_terminal("status", "--dsn", head_db, env={**env, "NO_COLOR": "1"})
    assert code == 0
    assert "table / rule" in plain
    assert "\x1b[3" not in plain  # NO_COLOR: no foreground colour (bold may stay)
    piped = pgsweep_process("status", "--dsn", head_db, env=clean_env())
    assert "\x1b" not in piped.out
    assert "─" not in piped.out
    assert piped.out.startswith("email_verification_tokens: 0 rows, 0 active, 0 garbage")


# --- configuration --------------------------------------------------------------------------


def test_options_come_from_the_command_line_then_the_environment_then_the_config_file(
    head_db: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in [k for k in os.environ if k.startswith("PGSWEEP_")] + ["DATABASE_URL"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pgsweep.toml").write_text(
        f"dsn = {json.dumps(head_db)}\njson = true\n\n[run]\nbatch-size = 0\n"
    )
    # The file in the working directory: its dsn and json apply to every command...
    done = matcha_time(capsys, "current")
    assert done.json()["state"] == "head"
    # ... and its bad [run] batch-size is a usage error that names the file.
    bad = pgsweep(capsys, "run", "--every", "1s")
    assert bad.code == errors.EXIT_USAGE
    assert "pgsweep.toml', batch-size: must be a positive" in bad.json()["error"]
    # The environment beats the file, the command line beats the environment.
    monkeypatch.setenv("PGSWEEP_BATCH_SIZE", "100")
    monkeypatch.setenv("PGSWEEP_JSON", "false")
    ran = pgsweep(capsys, "run", "--every", "1s", "--max-runs", "1")
    assert ran.code == 0, ran.err
    assert ran.out.splitlines()[-1].endswith("stopped after 1 run")
    as_json = pgsweep(capsys, "run", "--every", "1s", "--max-runs", "1", "--json")
    assert json.loads(as_json.out.splitlines()[-1])["event"] == "stopped"
    monkeypatch.setenv("PGSWEEP_BATCH_SIZE", "-3")
    env_bad = pgsweep(capsys, "run", "--every", "1s")
    assert env_bad.code == errors.EXIT_USAGE
    assert "PGSWEEP_BATCH_SIZE: must be a positive" in env_bad.err
    # PGSWEEP_DSN beats DATABASE_URL, which beats the file.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/x")
    assert matcha_time(capsys, "current").code == errors.EXIT_CANNOT_CONNECT
    monkeypatch.setenv("PGSWEEP_DSN", head_db)
    assert matcha_time(capsys, "current").out.strip().endswith("(head)")
    # An explicit --config that is missing or unknown keys are usage errors.
    missing = matcha_time(capsys, "current", "--config", str(tmp_path / "nope.toml"))
    assert missing.code == errors.EXIT_USAGE
    assert "does not exist" in missing.err
    (tmp_path / "odd.toml").write_text("bach-size = 5\n")
    odd = matcha_time(capsys, "current", "--config", str(tmp_path / "odd.toml"))
    assert (odd.code, "unknown setting 'bach_size'" in odd.err) == (errors.EXIT_USAGE, True)


def test_help_lists_the_environment_exit_codes_and_examples() -> None:
    for command in cli.COMMANDS:
        text = pgsweep_process(command.name, "--help", env=clean_env()).out
        for example in command.examples:
            assert example in text
        assert "130 interrupted" in " ".join(text.split())
        if command.connects:
            assert "PGSWEEP_DSN" in text


def test_shell_completion_scripts_know_every_command() -> None:
    bash = pgsweep_process("completion", "bash", env=clean_env())
    assert bash.code == 0
    assert "-F _shtab_pgsweep pgsweep" in bash.out
    zsh = pgsweep_process("completion", "zsh", env=clean_env())
    assert zsh.out.startswith("#compdef pgsweep")
    for command in cli.COMMANDS:
        assert command.name in bash.out
        assert command.name in zsh.out
    checked = subprocess.run(["bash", "-n"], input=bash.out, text=True, check=False)
    assert checked.returncode == 0


def test_progress_shows_on_a_terminal_only_and_goes_to_stderr(fresh_db: str) -> None:
    env = clean_env(COLUMNS="160", LINES="50", TERM="xterm-256color")
    code, shown = on_a_terminal(
        "upgrade", "--dsn", fresh_db, env=env, stderr_too=True, program=MATCHA_TIME
    )
    assert code == 0
    # The spinner names the SQL file being run (at least the last one, shown as it stops).
    assert re.search(r"running \d{4}_\w+\.sql…", shown), shown
    assert f"base -> {migrate.head()} (head)" in shown
    migrate.downgrade(fresh_db, "base")
    piped = matcha_time_process("upgrade", "--dsn", fresh_db, env=env)
    assert piped.code == 0
    assert "running" not in piped.out + piped.err
    # The same on stdout whichever way: only the spinner is extra, and it is on stderr.
    code, out_only = on_a_terminal("current", "--dsn", fresh_db, env=env, program=MATCHA_TIME)
    assert "running" not in out_only
