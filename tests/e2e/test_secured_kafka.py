"""The commands as a user runs them, against a Kafka that speaks only TLS (a CA made in the test).

``engage demo --duration`` with ``KAFKA_BOOTSTRAP_SERVERS`` set runs ``engage worker`` (Faust over TLS:
``broker_credentials``), ``engage ingest`` (aiokafka over TLS) and its own topic follower against it;
``engage replay`` is kafka-python over TLS. A worker and an ingest given the wrong CA stop at start with
the clear error and exit status 2. The broker is the real Tansu behind a TLS terminator
(``tests/tls_proxy.py`` says why).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.embedded.broker import EmbeddedBroker
from tests.tls import Pki, make_pki, security_env, tls_broker

ENGAGE = [sys.executable, "-m", "streams.cli"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secured(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with tls_broker(pki, log_path=str(tmp_path_factory.mktemp("tansu") / "broker.log")) as broker:
        yield broker


def _environ(data_dir: Path, **extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ENGAGE_", "CLICKHOUSE_", "KAFKA_"))}
    environ.update(
        ENGAGE_DATA_DIR=str(data_dir), ENGAGE_INGEST_PORT="0", ENGAGE_WORKER_METRICS_PORT="0", **extra
    )
    return environ


@pytest.mark.timeout(240)
def test_demo_runs_over_tls(secured: EmbeddedBroker, pki: Pki, tmp_path: Path) -> None:
    env = _environ(
        tmp_path / "data",
        **security_env(pki, secured.bootstrap, ENGAGE_TOPIC_PREFIX="demo-tls.", ENGAGE_TOPIC_PARTITIONS="2"),
    )
    demo = subprocess.run(
        [*ENGAGE, "demo", "--duration", "20", "--plain"],
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    output = demo.stdout + demo.stderr
    print(output[-3000:])
    assert demo.returncode == 0, output[-3000:]
    summary = next(line for line in output.splitlines() if line.startswith("demo stopped after"))
    numbers = dict(re.findall(r"(\w+)=(\S+)", summary))
    assert int(numbers["sent"]) > 0
    assert int(numbers["accepted"]) == int(numbers["sent"])  # ingest published every webhook over TLS
    assert int(numbers["processed"]) > 0  # the worker consumed them over TLS


def test_replay_over_tls(secured: EmbeddedBroker, pki: Pki, tmp_path: Path) -> None:
    env = _environ(
        tmp_path / "data",
        **security_env(
            pki, secured.bootstrap, ENGAGE_TOPIC_PREFIX="replay-tls.", ENGAGE_TOPIC_PARTITIONS="2"
        ),
    )
    path = tmp_path / "events.ndjson"
    subprocess.run(
        [*ENGAGE, "generate", "--events", "500", "--seed", "3", "--out", str(path)],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    from streams.settings import Settings
    from streams.topics import prepare

    settings = Settings.from_env(env)
    prepare(settings, secured.bootstrap)
    replay = subprocess.run(
        [*ENGAGE, "replay", str(path)], env=env, capture_output=True, text=True, timeout=120
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed 500 events" in replay.stdout


@pytest.mark.parametrize("command", ["worker", "ingest"])
def test_a_wrong_ca_stops_the_process_at_start(
    secured: EmbeddedBroker, pki: Pki, tmp_path: Path, command: str
) -> None:
    env = _environ(
        tmp_path / "data", **security_env(pki, secured.bootstrap, KAFKA_SSL_CA_FILE=str(pki.other_ca))
    )
    started = time.monotonic()
    process = subprocess.run(
        [*ENGAGE, command, *(["--port", "0"] if command == "ingest" else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2, process.stderr[-2000:]
    assert "KAFKA_SSL_CA_FILE" in process.stderr
    assert time.monotonic() - started < 60
