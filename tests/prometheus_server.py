"""A real Prometheus server for tests: the Debian ``prometheus`` binary on localhost, in a
temporary directory, scraping the targets it is given every second."""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCRAPE_INTERVAL = "1s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (``[]`` while nothing matches)."""
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(address, timeout=5) as answer:  # noqa: S310 (localhost)
            document = json.load(answer)
        assert document["status"] == "success", document
        return list(document["data"]["result"])

    def wait_for(self, promql: str, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Poll the query until it returns something (a few scrapes)."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"Prometheus never answered {promql!r}; log:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.2)


@contextmanager
def prometheus(targets: list[str], job: str = "pgsweep") -> Iterator[Prometheus]:
    with tempfile.TemporaryDirectory(prefix="pgsweep-prometheus-") as tmp:
        root = Path(tmp)
        config = root / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL}\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL}\n"
            "scrape_configs:\n"
            f"  - job_name: {job}\n"
            f"    static_configs:\n      - targets: {json.dumps(targets)}\n"
        )
        port = free_port()
        log = root / "prometheus.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            server = Prometheus(f"http://127.0.0.1:{port}", log)
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2):  # noqa: S310
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        message = f"prometheus did not start:\n{log.read_text()}"
                        raise AssertionError(message) from None
                    time.sleep(0.1)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
