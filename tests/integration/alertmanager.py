"""A real Alertmanager (Debian ``prometheus-alertmanager``) and a webhook receiver, for integration tests.

:class:`WebhookReceiver` records every notification Alertmanager delivers; :class:`AlertmanagerServer`
runs the binary on a free loopback port with clustering off. Use :func:`deploy_config` to load
``deploy/alertmanager/alertmanager.yml`` with its receivers pointed at the local receiver and its
waits shortened, so the routing tested is the one deployed.
"""

from __future__ import annotations

import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import yaml

from streams.embedded.broker import free_port
from tests.tools import DEPLOY, binary, start_daemon, stop_daemon, tail, wait_ready

DEPLOY_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"


class WebhookReceiver:
    """An HTTP server on loopback that stores ``(path, json)`` for every POST."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._cond:
                    receiver.received.append((self.path, orjson.loads(body)))
                    receiver._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[tuple[str, dict[str, Any]]]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout_s):
                raise TimeoutError(f"{len(self.received)} notifications after {timeout_s}s, wanted {count}")
            return list(self.received)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def deploy_config(receiver_url: str, wait: str = "1s") -> dict[str, Any]:
    """The deployed config, webhook hosts replaced by ``receiver_url`` (paths kept), waits set to ``wait``."""
    config: dict[str, Any] = yaml.safe_load(DEPLOY_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = receiver_url + urllib.parse.urlsplit(hook["url"]).path

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = wait
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return config


class AlertmanagerServer:
    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "alertmanager.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> AlertmanagerServer:
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        self.port = free_port()
        args = [
            binary("alertmanager"),
            f"--config.file={config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip port: one instance, nothing else bound
            "--log.level=warn",
        ]
        self._proc = start_daemon(args, self.log_path)
        wait_ready(self._proc, f"{self.url}/-/ready", self.log_path, timeout_s)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_daemon(proc)

    def log(self) -> str:
        return tail(self.log_path)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=orjson.dumps(alerts),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:
            result: list[dict[str, Any]] = orjson.loads(response.read())
            return result

    def __enter__(self) -> AlertmanagerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
