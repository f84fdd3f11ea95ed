"""A real Prometheus (Debian binary) for integration tests: start, point at targets, query.

One server per session (fixture :func:`prometheus`), scraping every second. Tests add their own
targets through file-based service discovery, so nothing restarts between tests::

    def test_x(prometheus: PrometheusServer) -> None:
        with prometheus.scrape("engage-worker", server.url) as target:
            target.wait_up()
            prometheus.wait_for_value(f'engage_events_consumed_total{{{target.selector}}}', 3)

Every target gets a unique ``instance`` label; ``target.selector`` matches only its series, so
tests sharing the server do not see each other's samples. The deploy rule files are loaded too
(``rule_files``), so a test can watch ``ALERTS`` from the real rules.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from streams.embedded.broker import free_port
from tests.tools import DEPLOY, binary, start_daemon, stop_daemon, tail, wait_ready

Sample = tuple[dict[str, str], float]


class PrometheusError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    """A scrape target registered with :meth:`PrometheusServer.scrape`."""

    server: PrometheusServer
    job: str
    instance: str
    url: str

    @property
    def selector(self) -> str:
        """Label matchers for this target's series, to put inside ``{...}``."""
        return f'job="{self.job}",instance="{self.instance}"'

    def wait_up(self, timeout_s: float = 20.0) -> None:
        """Until Prometheus has scraped this target successfully (``up == 1``)."""
        self.server.wait_for_value(f"up{{{self.selector}}}", 1, timeout_s=timeout_s)

    def wait_down(self, timeout_s: float = 20.0) -> None:
        self.server.wait_for_value(f"up{{{self.selector}}}", 0, timeout_s=timeout_s)


class PrometheusServer:
    """``prometheus`` on a free loopback port with its TSDB in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.rule_files = tuple(rule_files)
        self.extra_args = tuple(extra_args)
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sd_dir = workdir / "targets"
        self.log_path = workdir / "prometheus.log"

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {
                    # Targets come and go as files (watched with inotify); each file's `job` and
                    # `instance` labels replace the defaults, so one scrape config serves all jobs.
                    "job_name": "file-sd",
                    "file_sd_configs": [{"files": [str(self._sd_dir / "*.json")], "refresh_interval": "1s"}],
                }
            ],
        }

    def start(self, timeout_s: float = 30.0) -> PrometheusServer:
        self._sd_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self._config()))
        self.port = free_port()
        args = [
            binary("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
            *self.extra_args,
        ]
        self._proc = start_daemon(args, self.log_path)
        wait_ready(self._proc, f"{self.url}/-/ready", self.log_path, timeout_s)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_daemon(proc)

    def log(self) -> str:
        return tail(self.log_path)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- targets -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def scrape(self, job: str, metrics_url: str) -> Iterator[Target]:
        """Scrape ``metrics_url`` (``http://host:port/path``) as ``job`` while the block runs."""
        parsed = urllib.parse.urlsplit(metrics_url)
        instance = f"{parsed.netloc}#{uuid.uuid4().hex[:8]}"
        entry = [
            {
                "targets": [parsed.netloc],
                "labels": {
                    "job": job,
                    "instance": instance,
                    "__metrics_path__": parsed.path or "/metrics",
                },
            }
        ]
        path = self._sd_dir / f"{uuid.uuid4().hex}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(entry))
        tmp.rename(path)  # atomic: Prometheus never reads a half-written file
        try:
            yield Target(self, job, instance, metrics_url)
        finally:
            path.unlink(missing_ok=True)

    # --- HTTP API ----------------------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = orjson.loads(response.read())
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[Sample]:
        """An instant query: ``[(labels, value), ...]``."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(item["metric"], float(item["value"][1])) for item in data["result"]]

    def value(self, expr: str) -> float | None:
        """The single value of ``expr``, None if it has no result; more than one result is an error."""
        result = self.query(expr)
        if not result:
            return None
        if len(result) > 1:
            raise PrometheusError(f"{expr} has {len(result)} series: {result}")
        return result[0][1]

    def samples(self, expr: str, window: str = "5m") -> list[float]:
        """Every stored sample of a single-series selector over the last ``window``, oldest first."""
        data = self.api("query", query=f"{expr}[{window}]")
        if not data["result"]:
            return []
        if len(data["result"]) > 1:
            raise PrometheusError(f"{expr} has {len(data['result'])} series")
        return [float(v) for _, v in data["result"][0]["values"]]

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def wait_until(
        self, expr: str, predicate: Callable[[list[Sample]], bool], timeout_s: float = 20.0
    ) -> list[Sample]:
        deadline = time.monotonic() + timeout_s
        last: list[Sample] = []
        while time.monotonic() < deadline:
            last = self.query(expr)
            if predicate(last):
                return last
            time.sleep(0.2)
        raise PrometheusError(f"timed out after {timeout_s}s waiting on {expr}; last result {last}")

    def wait_for_value(self, expr: str, expected: float, timeout_s: float = 20.0) -> None:
        self.wait_until(expr, lambda r: len(r) == 1 and r[0][1] == expected, timeout_s)


DEPLOY_RULES = tuple(sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")))


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus scraping every second, with the deploy alert rules loaded."""
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), rule_files=DEPLOY_RULES)
    with server:
        yield server
