"""A real Alertmanager (Debian's ``prometheus-alertmanager``) receives, shows and resolves our alerts."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.alerting import AlertmanagerClient
from streams.engagement.model import HOUR_MS, Alert
from streams.errors import AlertmanagerRejected, AlertmanagerUnavailable

CONFIG = """
route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _binary() -> str:
    for name in ("prometheus-alertmanager", "alertmanager"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Alertmanager binary: install Debian's prometheus-alertmanager (see README)")


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("alertmanager")
    (workdir / "alertmanager.yml").write_text(CONFIG)
    url = f"http://127.0.0.1:{_free_port()}"
    log = (workdir / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            _binary(),
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--cluster.listen-address=",  # no gossip port: a single instance
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until(lambda: _get(f"{url}/-/ready", raw=True) == b"OK", what="Alertmanager ready", log=workdir)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _get(url: str, raw: bool = False) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read()
    except OSError:
        return None
    return body.strip() if raw else orjson.loads(body)


def _wait_until(check: Callable[[], Any], what: str, log: Path | None = None, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    detail = (log / "alertmanager.log").read_text()[-2000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


def _alerts_for(url: str, account: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'account_id="{account}"'})
    found: list[dict[str, Any]] = _get(f"{url}/api/v2/alerts?{query}") or []
    return found


def test_an_opened_alert_fires_with_the_account_label_and_resolving_clears_it(alertmanager: str) -> None:
    now_ms = int(time.time() * 1000)
    opened_at = now_ms - 2 * HOUR_MS  # event time lags wall time, as in a replay
    client = AlertmanagerClient(alertmanager)
    client.post([Alert("brand-42", "drop", "opened", opened_at, 12.0, 48.5, opened_at)])

    def firing() -> list[dict[str, Any]]:
        return [a for a in _alerts_for(alertmanager, "brand-42") if a["status"]["state"] == "active"]

    (alert,) = _wait_until(firing, what="the alert to be active")
    assert alert["labels"] == {
        "alertname": "EngagementDrop",
        "account_id": "brand-42",
        "kind": "drop",
        "severity": "warning",
    }
    assert alert["annotations"]["observed"] == "12" and alert["annotations"]["baseline"] == "48.5"
    assert alert["startsAt"].startswith(time.strftime("%Y-%m-%dT%H", time.gmtime(opened_at / 1000)))
    assert _alerts_for(alertmanager, "someone-else") == []

    resolved_at = now_ms - HOUR_MS
    client.post([Alert("brand-42", "drop", "resolved", resolved_at, 47.0, 48.5, opened_at)])
    _wait_until(lambda: _alerts_for(alertmanager, "brand-42") == [], what="the alert to resolve")


def test_errors_are_classified(alertmanager: str) -> None:
    alert = Alert("brand-7", "silence", "opened", 0, 0.0, 30.0, 0)
    with pytest.raises(AlertmanagerRejected) as rejected:
        AlertmanagerClient(f"{alertmanager}/no/such/prefix").post([alert])
    assert rejected.value.status == 404
    with pytest.raises(AlertmanagerUnavailable):
        AlertmanagerClient(f"http://127.0.0.1:{_free_port()}", timeout_s=2).post([alert])
