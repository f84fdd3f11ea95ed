"""``python -m streams.healthcheck``: exit 0 if this container's engage process answers ``/healthz``.

The image's ``HEALTHCHECK`` (``Dockerfile``): one image runs ``engage worker`` (``/healthz`` beside
``/metrics`` on ``ENGAGE_WORKER_METRICS_PORT``: its event loop ran recently) or ``engage ingest``
(``/healthz`` on ``ENGAGE_INGEST_PORT``), so both are tried on loopback; a port nobody listens on is
skipped. A worker whose loop is stuck answers 503 there, and the container turns unhealthy.
"""

from __future__ import annotations

import sys
import urllib.request

from streams.settings import Settings


def healthy(settings: Settings, timeout_s: float = 3.0) -> bool:
    for port in (settings.worker_metrics_port, settings.ingest_port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout_s) as reply:
                if reply.status == 200:
                    return True
        except OSError:  # refused (the other kind of process), or 503 (HTTPError): try the next
            continue
    return False


if __name__ == "__main__":
    sys.exit(0 if healthy(Settings.from_env()) else 1)
