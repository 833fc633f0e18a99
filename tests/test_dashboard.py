"""The Grafana dashboard (grafana/pgsweep-dashboard.json) shows what a real Prometheus scraped.

The structure is checked on the JSON itself (unique ids, a data source and targets on every
panel, the variables, no metric name ``pgsweep metrics`` does not export). Then a falling-behind
scenario runs for a few seconds of real time while a real Prometheus scrapes ``pgsweep serve``
every second: a writer inserts rows that expire as they are written, faster than a throttled
sweep (10 rows a batch, a 50 ms pause after each, runs cut at 1 s by ``pgsweep.max_run_time``)
deletes them, so the lag passes its target; a second table's rule fails on every run (a trigger
refuses its deletes). The writer stops, the sweep catches up. Every target of every panel, with
the dashboard's variables substituted as Grafana would (the variables' own ``label_values``
queries answered by the same Prometheus), is then run as the range query a panel makes and must
return series, and only series of the table the variable picked.

``PGSWEEP_DASHBOARD_RECORD=file.json`` keeps every panel's series (scripts/plot_dashboard.py
draws docs/dashboard.svg from it).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pgsweep import engine, metrics
from tests.pg import connect
from tests.prometheus_server import Prometheus, free_port, prometheus
from tests.test_metrics import serving

DASHBOARD = Path(__file__).resolve().parent.parent / "grafana" / "pgsweep-dashboard.json"
RECORD = os.environ.get("PGSWEEP_DASHBOARD_RECORD")
LAG_TARGET_S = 1.0
WRITE_RATE = 400  # rows a second; the sweep below removes at most ~200
SWEEP = "CALL pgsweep.sweep(%s, 10, '50 milliseconds')"
# Grafana's $__rate_interval is four scrape intervals at least; the test scrapes every second.
RATE_INTERVAL = "10s"
WAIT_LIMIT_S = 60
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset"}  # fmt: skip


def load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that queries (rows only group them)."""
    for panel in document["panels"]:
        if panel["type"] != "row":
            yield panel
        yield from (p for p in panel.get("panels", []) if p["type"] != "row")


def exported_names() -> set[str]:
    """The metric names of an exposition of ``pgsweep metrics``, every series present: the
    exporter's own families rendered by the client library (which adds ``_total``)."""
    row: dict[str, Any] = {"table_name": "public.t", "column_name": "expires_at"}
    for series in (*metrics.RULE_SERIES, *metrics.TABLE_SERIES):
        row[series.column] = 1

    class Reading:
        def collect(self) -> list[Any]:
            return list(metrics.families(metrics.Scrape([row], None, 0.0, "1.2")))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Reading())
    text = generate_latest(registry).decode()
    return {sample.name for family in text_string_to_metric_families(text)
            for sample in family.samples}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers outside selectors, ranges, strings and
    grouping labels that are neither functions nor PromQL's keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        if match.group(2) is None and match.group(1) not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def test_the_metric_names_are_read_from_an_expression_and_not_its_labels_or_functions() -> None:
    assert metric_names(
        'sum by (table, rule) (rate(pgsweep_rows_deleted_total{rule=~"$rule"}[5m]))'
        " > on (job) up or vector(0)"
    ) == {"pgsweep_rows_deleted_total", "up"}


def test_the_dashboard_is_a_grafana_model_with_variables_and_exported_metrics_only() -> None:
    document = load()
    assert document["schemaVersion"] >= 36  # Grafana 9.x/10's model
    every = [p["id"] for p in document["panels"]]
    every += [p["id"] for row in document["panels"] for p in row.get("panels", [])]
    assert len(every) == len(set(every)), "panel ids must be unique"
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"job", "table", "rule"} <= set(variables)
    exported = exported_names()
    titles = set()
    for panel in panels(document):
        titles.add(panel["title"])
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            unknown = metric_names(target["expr"]) - exported
            assert not unknown, f"{panel['title']}: {unknown} is not exported"
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
    for name in ("job", "table", "rule"):
        assert variables[name]["datasource"]["uid"] == "${datasource}"
        selector = re.fullmatch(r"label_values\((.*), (\w+)\)", variables[name]["query"]["query"])
        assert selector, variables[name]["query"]
        assert metric_names(selector.group(1)) <= exported
    assert {"Backlog: garbage rows per rule", "Expiry lag against its target",
            "Deletes per second", "Run failures", "Table and index size"} <= titles  # fmt: skip


class Writer(threading.Thread):
    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        # By the clock: WRITE_RATE rows a second however slow an insert is.
        try:
            with connect(self.dsn) as conn:
                due, last = 0.0, time.monotonic()
                while not self.stop.wait(0.05):
                    now = time.monotonic()
                    due += WRITE_RATE * (now - last)
                    last = now
                    conn.execute(
                        "INSERT INTO events (expires_at)"
                        " SELECT clock_timestamp() FROM generate_series(1, %s)",
                        (int(due),),
                    )
                    due -= int(due)
        except BaseException as exc:  # reported by the test
            self.error = exc


class Sweeper(threading.Thread):
    """The throttled sweep of events, runs cut at a second; the failing rule's sweep beside."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.dsn) as conn:
                conn.execute("SET pgsweep.pacing = off")  # fixed batches: the falling behind
                conn.execute("SET pgsweep.max_run_time = '1s'")
                while not self.stop.is_set():
                    conn.execute(SWEEP, ("events",))
                    conn.execute(SWEEP, ("audit_log",))  # fails; recorded, not raised
                    self.stop.wait(0.1)
        except BaseException as exc:
            self.error = exc


def label_values(server: Prometheus, query: str) -> list[str]:
    """Grafana's ``label_values(selector, label)`` against Prometheus' API."""
    match = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
    assert match, query
    selector, label = match.groups()
    address = f"{server.url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
        {"match[]": selector}
    )
    with urllib.request.urlopen(address, timeout=5) as answer:  # noqa: S310 (localhost)
        document = json.load(answer)
    assert document["status"] == "success", document
    return list(document["data"])


def query_range(server: Prometheus, promql: str, start: float, end: float) -> list[Any]:
    address = f"{server.url}/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "1"}
    )
    with urllib.request.urlopen(address, timeout=10) as answer:  # noqa: S310 (localhost)
        document = json.load(answer)
    assert document["status"] == "success", (promql, document)
    return list(document["data"]["result"])


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr.replace("$__rate_interval", RATE_INTERVAL)


def regex_of(value: str) -> str:
    """A single value as Grafana puts it in a PromQL regex matcher (escaped, then quoted)."""
    return re.sub(r"([\\.^$*+?()\[\]{}|])", r"\\\\\1", value)


def wait_for(server: Prometheus, promql: str, threads: tuple[Writer, Sweeper]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_S
    while not server.query(promql):
        for thread in threads:
            assert thread.error is None, repr(thread.error)
        assert time.monotonic() < deadline, f"Prometheus never answered {promql!r}"
        time.sleep(0.2)


@pytest.fixture
def scenario_db(fresh_db: str) -> str:
    engine.install(fresh_db)
    with connect(fresh_db) as conn:
        conn.execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX events_expires_at_idx ON events (expires_at);"
            "CREATE TABLE audit_log (id bigserial PRIMARY KEY, expires_at timestamptz NOT NULL);"
            "CREATE INDEX audit_log_expires_at_idx ON audit_log (expires_at);"
            "INSERT INTO audit_log (expires_at)"
            " SELECT now() - interval '1 day' FROM generate_series(1, 50);"
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'audit rows are kept'; END $$;"
            "CREATE TRIGGER refuse BEFORE DELETE ON audit_log"
            " FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        conn.execute("SELECT pgsweep.add_rule('events', 'expires_at')")
        conn.execute("SELECT pgsweep.add_rule('audit_log', 'expires_at')")
        conn.execute(
            "SELECT pgsweep.set_lag_target('events', 'expires_at', make_interval(secs => %s))",
            (LAG_TARGET_S,),
        )
    return fresh_db


def test_every_panel_query_returns_series_from_a_prometheus_that_scraped_a_falling_behind(
    scenario_db: str,
) -> None:
    document = load()
    port = free_port()
    with prometheus([f"127.0.0.1:{port}"]) as server, serving(scenario_db, port):
        server.wait_for('pgsweep_up{job="pgsweep"} == 1')
        started = time.time() - 2
        writer, sweeper = Writer(scenario_db), Sweeper(scenario_db)
        threads = (writer, sweeper)
        writer.start()
        sweeper.start()
        try:
            # Behind: the lag twice its target, a rate measured (runs cut at 1 s end), and
            # the failing rule counted.
            wait_for(server, 'pgsweep_expiry_lag_seconds{table="public.events"}'
                             " > 2 * pgsweep_expiry_lag_target_seconds", threads)  # fmt: skip
            wait_for(server, 'pgsweep_backlog_eta_seconds{table="public.events"} > 0', threads)
            wait_for(server, 'pgsweep_run_failures_total{table="public.audit_log"} > 0', threads)
            writer.stop.set()
            writer.join(10)
            # Caught up.
            wait_for(server, 'pgsweep_garbage_rows{table="public.events"} == 0', threads)
            wait_for(server, 'rate(pgsweep_rows_deleted_total{table="public.events"}'
                           f'[{RATE_INTERVAL}]) == 0', threads)  # fmt: skip
        finally:
            writer.stop.set()
            sweeper.stop.set()
            writer.join(10)
            sweeper.join(WAIT_LIMIT_S)
        assert writer.error is None, repr(writer.error)
        assert sweeper.error is None, repr(sweeper.error)
        ended = time.time()

        variables = {v["name"]: v for v in document["templating"]["list"]}
        chosen: dict[str, str] = {"datasource": "prometheus"}
        found: dict[str, list[str]] = {}
        for name in ("job", "table", "rule"):  # in order: each query uses the ones before
            query = substitute(variables[name]["query"]["query"], chosen)
            found[name] = label_values(server, query)
            assert found[name], f"variable {name}: {query} found nothing"
            chosen[name] = variables[name]["allValue"]  # "All", as the dashboard opens
        assert found["table"] == ["public.audit_log", "public.events"]
        assert found["rule"] == ["expires_at"]

        recorded = []
        for panel in panels(document):
            series_of_panel = []
            for target in panel["targets"]:
                expr = substitute(target["expr"], chosen)
                result = query_range(server, expr, started, ended)
                assert result, f"{panel['title']}: {expr} returned no series"
                series_of_panel.append({"expr": expr, "legend": target["legendFormat"],
                                        "series": result})  # fmt: skip
                # One table picked: only its series (those that carry the label).
                one = substitute(target["expr"], {**chosen, "table": regex_of("public.events")})
                for series in query_range(server, one, started, ended):
                    assert series["metric"].get("table", "public.events") == "public.events"
            recorded.append({"title": panel["title"], "type": panel["type"],
                             "unit": panel["fieldConfig"]["defaults"].get("unit", ""),
                             "gridPos": panel["gridPos"], "targets": series_of_panel})  # fmt: skip

        # The scenario is in the data: lag over target, failures, deletes, a catch-up.
        lag = query_range(
            server, 'max_over_time(pgsweep_expiry_lag_seconds{table="public.events"}[1h])',
            ended, ended,
        )  # fmt: skip
        assert float(lag[0]["values"][-1][1]) > 2 * LAG_TARGET_S
        failures = server.query('pgsweep_run_failures_total{table="public.audit_log"}')
        assert float(failures[0]["value"][1]) >= 1
        assert server.query('pgsweep_last_run_failed{table="public.audit_log"} == 1')
        assert server.query('pgsweep_rows_deleted_total{table="public.events"} > 0')

    if RECORD:
        Path(RECORD).write_text(json.dumps(
            {"start": started, "end": ended, "lag_target_s": LAG_TARGET_S,
             "panels": recorded}, indent=1))  # fmt: skip
