"""The one Kafka security configuration: read from the environment, and handed to every client.

SASL cannot log in to the Tansu broker here (see ``tests/integration/test_kafka_security.py``), so this is
where SASL_SSL / SCRAM settings are shown to reach each client the project builds, client by client, without
a network: the clients are built (or their constructors intercepted) and their configuration read back.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from prometheus_client import CollectorRegistry

from streams.errors import ConfigError
from streams.kafka_security import KafkaSecurity
from streams.metrics import Metrics
from streams.settings import Settings
from streams.sinks.base import CountingSink

ROOT = Path(__file__).resolve().parents[2]

SASL_SSL = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1.example.com:9093",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "engage",
    "KAFKA_SASL_PASSWORD": "pa55word",
}


def test_settings_read_the_kafka_security_and_keep_the_password_out_of_repr() -> None:
    settings = Settings.from_env(SASL_SSL)
    security = settings.kafka_security
    assert (security.protocol, security.sasl_mechanism, security.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "engage",
    )
    assert security.sasl_password == "pa55word"
    assert "pa55word" not in repr(settings) and "pa55word" not in repr(security)
    assert "pa55word" not in security.describe()
    assert isinstance(security.ssl_context, ssl.SSLContext)
    assert security.ssl_context.check_hostname and security.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_secrets_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    env = {**SASL_SSL, "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    del env["KAFKA_SASL_PASSWORD"]
    assert Settings.from_env(env).kafka_sasl_password == "from-a-file"
    with pytest.raises(ConfigError, match="not both"):
        Settings.from_env({**env, "KAFKA_SASL_PASSWORD": "x"})
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.from_env({**env, "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")})
    webhook = tmp_path / "webhooks"
    webhook.write_text("generic=abc")
    assert Settings.from_env({"ENGAGE_WEBHOOK_SECRETS_FILE": str(webhook)}).webhook_secrets == {
        "generic": "abc"
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_USERNAME"),
        ({**SASL_SSL, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM must be one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "c.pem"}, "go together"),
        ({"KAFKA_SSL_CA_FILE": "ca.pem"}, "does not use TLS"),
    ],
)
def test_inconsistent_security_settings_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_an_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    security = KafkaSecurity(protocol="SSL", ca_file=str(tmp_path / "nope.pem"))
    with pytest.raises(ConfigError, match="KAFKA_SSL"):
        _ = security.ssl_context


def test_client_keyword_arguments_per_protocol() -> None:
    assert KafkaSecurity().aiokafka() == {"security_protocol": "PLAINTEXT"}
    ssl_only = KafkaSecurity(protocol="SSL", check_hostname=False).aiokafka()
    assert ssl_only["security_protocol"] == "SSL" and not ssl_only["ssl_context"].check_hostname
    assert ssl_only["ssl_context"].verify_mode == ssl.CERT_REQUIRED  # the chain is still verified
    sasl = Settings.from_env(SASL_SSL).kafka_security.kafka_python()
    assert sasl["sasl_mechanism"] == "SCRAM-SHA-512" and sasl["sasl_plain_username"] == "engage"
    plain = KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p").aiokafka()
    assert "ssl_context" not in plain and plain["sasl_mechanism"] == "PLAIN"


def _assert_sasl(client: Any) -> None:
    """An aiokafka client (``AIOKafkaClient``) configured for SASL_SSL / SCRAM-SHA-512 as engage."""
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "engage"
    assert isinstance(client._ssl_context, ssl.SSLContext)


def test_faust_consumer_and_producer_get_the_credentials(tmp_path: Path) -> None:
    from streams.worker import topology

    settings = Settings.from_env({**SASL_SSL, "ENGAGE_DATA_DIR": str(tmp_path)})

    async def build() -> tuple[Any, Any]:
        metrics = Metrics.create(CollectorRegistry())
        app = topology.build(settings, settings.kafka_bootstrap_servers, CountingSink(), metrics).app
        consumer = app.consumer._thread._create_worker_consumer(app.transport)  # what start() builds
        return consumer, app.producer._settings_auth()  # what the producer thread's client is given

    consumer, producer_auth = asyncio.run(build())
    _assert_sasl(consumer._client)
    assert producer_auth["security_protocol"] == "SASL_SSL"
    assert producer_auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert producer_auth["sasl_plain_username"] == "engage"
    assert isinstance(producer_auth["ssl_context"], ssl.SSLContext)


class _Built(Exception):
    """Raised by an intercepted client constructor, carrying the keyword arguments it was given."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("built")
        self.kwargs = kwargs


_SEEN: list[dict[str, Any]] = []


def _intercept(monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    def build(*args: Any, **kwargs: Any) -> Any:
        _SEEN.append(kwargs)
        raise _Built(kwargs)

    monkeypatch.setattr(target, build)


def _built(call: Any) -> dict[str, Any]:
    """The keyword arguments the intercepted constructor got (whatever the caller made of the error)."""
    _SEEN.clear()
    try:
        result = call()
        if asyncio.iscoroutine(result):
            asyncio.run(result)
    except Exception:
        pass
    assert _SEEN, "the client was not built"
    return _SEEN[-1]


def test_every_other_client_gets_the_security(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.demo.probes import TopicFollower
    from streams.embedded import broker
    from streams.ingest.publisher import KafkaPublisher
    from streams.producer import KafkaEventPublisher
    from streams.settings import Topics
    from streams.topics import admin_client
    from streams.worker.faust_adapter import fast_recovery, highwater

    security = Settings.from_env(SASL_SSL).kafka_security
    bootstrap = "kafka-1.example.com:9093"
    tp = faust.types.TP("t", 0)
    calls = {
        "streams.worker.faust_adapter.highwater.AIOKafkaConsumer": lambda: highwater.fetched_highwaters(
            bootstrap, [tp], security=security
        ),
        "streams.worker.faust_adapter.fast_recovery.AIOKafkaConsumer": lambda: fast_recovery.read_changelog(
            bootstrap, {tp: (0, 5)}, lambda tp, changes: True, 1.0, security
        ),
        "streams.demo.probes.AIOKafkaConsumer": lambda: TopicFollower(bootstrap, {}, security).run(
            asyncio.Event()
        ),
        "aiokafka.AIOKafkaProducer": lambda: KafkaPublisher(
            bootstrap, ack_timeout_ms=1000, security=security
        )._make(True),
        "kafka.KafkaProducer": lambda: KafkaEventPublisher(bootstrap, Topics(), 1, security=security),
        "kafka.KafkaAdminClient": lambda: admin_client(bootstrap, security),
    }
    monkeypatch.setattr("streams.topics.check_tls", lambda *args: None)
    monkeypatch.setattr("streams.producer.check_tls", lambda *args: None)
    for target, call in calls.items():
        _intercept(monkeypatch, target)
        kwargs = _built(call)
        assert kwargs["security_protocol"] == "SASL_SSL", target
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512", target
        assert kwargs["sasl_plain_username"] == "engage" and kwargs["sasl_plain_password"] == "pa55word", (
            target
        )
        assert kwargs["ssl_context"] is security.ssl_context, target
    for call in (
        lambda: broker.wait_until_serving(bootstrap, 0.2, security),
        lambda: broker.ensure_topics(bootstrap, ["t"], partitions=1, security=security),
    ):
        kwargs = _built(call)
        assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"


def test_no_kafka_client_is_built_without_the_security() -> None:
    """Every place in the package that constructs a Kafka client passes the security keyword arguments (the
    benchmarks, which always run against the embedded broker, excepted)."""
    pattern = re.compile(
        r"\b(AIOKafkaConsumer|AIOKafkaProducer|KafkaProducer|KafkaAdminClient|KafkaConsumer)\("
    )
    unsecured = []
    for path in sorted((ROOT / "streams").rglob("*.py")):
        if "bench" in path.parts:
            continue
        text = path.read_text()
        for match in pattern.finditer(text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            if "security" not in text[match.start() : end]:
                unsecured.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert unsecured == []
