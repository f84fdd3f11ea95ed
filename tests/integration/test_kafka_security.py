"""Kafka over TLS against the real Tansu broker, with a CA made in the test (``tests/tls.py``).

Tansu 0.6.0 refuses ``--cert`` with ``--key`` on its command line, so a TLS terminator made in the test stands
in front of it (``tests/tls_proxy.py``); the broker advertises only the TLS port, so every connection a
client makes (bootstrap, then the advertised broker) is real TLS, verified against the test CA.

SASL: Tansu's ``--authentication`` offers SCRAM only (a PLAIN handshake is answered "no shared mechanism") and
a SCRAM user can be created only by an authenticated client, in memory storage that a restart loses; so no
login can succeed here. What runs against Tansu: a refused login (an unknown SCRAM user, and a client
without SASL) stops with the clear error in bounded time. That the SASL settings reach every client is
``tests/unit/test_kafka_security.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.demo.probes import TopicFollower
from streams.embedded.broker import EmbeddedBroker
from streams.errors import KafkaRefused
from streams.events import iter_message
from streams.ingest.publisher import KafkaPublisher
from streams.kafka_security import KafkaSecurity
from streams.producer import KafkaEventPublisher
from streams.settings import Settings
from streams.topics import prepare
from streams.worker.faust_adapter.highwater import fetched_highwaters
from tests.tls import Pki, make_pki, tls_broker

PARTITIONS = 2


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secured(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("tansu-tls") / "broker.log"
    with tls_broker(pki, log_path=str(log)) as broker:
        yield broker


def _settings(pki: Pki, bootstrap: str, **overrides: object) -> Settings:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_FILE": str(pki.ca),
        "ENGAGE_TOPIC_PREFIX": f"tls{uuid.uuid4().hex[:6]}.",
        "ENGAGE_TOPIC_PARTITIONS": str(PARTITIONS),
    }
    return Settings.from_env(env, **overrides)


def test_topics_are_created_and_checked_over_tls(secured: EmbeddedBroker, pki: Pki) -> None:
    settings = _settings(pki, secured.bootstrap)
    created = prepare(settings, secured.bootstrap)
    assert set(settings.topics.all) <= set(created)
    # Faust's changelogs carry the prefix too, and are created up front.
    assert f"{settings.topic_prefix}engagement-streams-engagement-state-changelog" in created
    assert prepare(settings, secured.bootstrap) == []  # the second start finds them


def test_a_wrong_ca_stops_at_start_with_a_clear_error(secured: EmbeddedBroker, pki: Pki) -> None:
    settings = _settings(pki, secured.bootstrap, kafka_ssl_ca_file=str(pki.other_ca))
    started = time.monotonic()
    with pytest.raises(KafkaRefused, match="KAFKA_SSL_CA_FILE") as caught:
        prepare(settings, secured.bootstrap)
    assert time.monotonic() - started < 10, "must not wait for the client's bootstrap timeout"
    assert "certificate" in str(caught.value)
    with pytest.raises(KafkaRefused, match="KAFKA_SSL_CA_FILE"):
        KafkaEventPublisher(secured.bootstrap, settings.topics, PARTITIONS, security=settings.kafka_security)


def test_a_plaintext_client_against_the_tls_listener_stops_with_a_clear_error(
    secured: EmbeddedBroker, pki: Pki
) -> None:
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": secured.bootstrap})
    started = time.monotonic()
    with pytest.raises(KafkaRefused, match="KAFKA_SECURITY_PROTOCOL"):
        from streams.topics import admin_client

        admin_client(secured.bootstrap, settings.kafka_security, timeout_ms=3000)
    assert time.monotonic() - started < 10


def test_every_client_kind_round_trips_over_tls(secured: EmbeddedBroker, pki: Pki) -> None:
    """kafka-python's producer (replay/send), aiokafka's producer (ingest) and consumers (high-water,
    the demo's follower) all connect with the one KafkaSecurity."""
    settings = _settings(pki, secured.bootstrap)
    security = settings.kafka_security
    prepare(settings, secured.bootstrap)
    from streams.demo.generator import GeneratorConfig, TrafficGenerator

    events = TrafficGenerator(GeneratorConfig.demo(5, rate_events_per_s=10_000)).take(200)
    with KafkaEventPublisher(secured.bootstrap, settings.topics, PARTITIONS, security=security) as producer:
        assert producer.send(events) > 0

    async def scenario() -> tuple[int, dict[object, int], list[object]]:
        publisher = await KafkaPublisher(secured.bootstrap, ack_timeout_ms=10_000, security=security).start()
        try:
            from streams.ingest.envelopes import Envelope

            envelope = Envelope(settings.topics.flags, 0, b"k", b'{"kind": "engaged"}')
            outcomes = await publisher.publish_each([envelope])
            assert outcomes == [None]
        finally:
            await publisher.stop()
        tps = [TopicPartition(topic, p) for topic in settings.topics.interactions for p in range(PARTITIONS)]
        highwaters = await fetched_highwaters(secured.bootstrap, tps, timeout_s=10, security=security)
        seen: list[object] = []
        stop = asyncio.Event()
        follower = TopicFollower(secured.bootstrap, {settings.topics.flags: seen.append}, security)
        task = asyncio.create_task(follower.run(stop))
        async with asyncio.timeout(30):
            while not seen:
                await asyncio.sleep(0.1)
        stop.set()
        await task
        consumer = AIOKafkaConsumer(
            bootstrap_servers=secured.bootstrap, auto_offset_reset="earliest", **security.aiokafka()
        )
        await consumer.start()
        count = 0
        try:
            consumer.assign(tps)
            async with asyncio.timeout(30):
                while count < len(events):
                    for batch in (await consumer.getmany(timeout_ms=500)).values():
                        count += sum(len(list(iter_message(r.value))) for r in batch)
        finally:
            await consumer.stop()
        return count, highwaters, seen

    count, highwaters, seen = asyncio.run(scenario())
    assert count == len(events)
    assert sum(highwaters.values()) > 0
    assert seen == [{"kind": "engaged"}]


def test_a_refused_login_stops_at_start_with_a_clear_error(pki: Pki, tmp_path: Path) -> None:
    with tls_broker(pki, authentication=True, log_path=str(tmp_path / "broker.log")) as broker:
        for security in (
            KafkaSecurity(
                protocol="SASL_SSL",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_username="nobody",
                sasl_password="wrong",
                ca_file=str(pki.ca),
            ),
            KafkaSecurity(protocol="SSL", ca_file=str(pki.ca)),  # no login at all
        ):
            from streams.topics import admin_client

            started = time.monotonic()
            with pytest.raises(KafkaRefused, match="SASL user and password") as caught:
                admin_client(broker.bootstrap, security, timeout_ms=3000)
            assert time.monotonic() - started < 10
            assert "wrong" not in str(caught.value)  # the password is never in a message


def test_mutual_tls_with_the_client_certificate(pki: Pki, tmp_path: Path) -> None:
    """A listener that requires a client certificate: KAFKA_SSL_CERT_FILE / KEY_FILE reach the clients."""
    with tls_broker(pki, mutual=True, log_path=str(tmp_path / "broker.log")) as broker:
        settings = _settings(
            pki,
            broker.bootstrap,
            kafka_ssl_cert_file=str(pki.client_cert),
            kafka_ssl_key_file=str(pki.client_key),
        )
        assert set(settings.topics.all) <= set(prepare(settings, broker.bootstrap))
        from streams.topics import admin_client

        without = _settings(pki, broker.bootstrap).kafka_security
        started = time.monotonic()
        with pytest.raises(KafkaRefused, match="KAFKA_SSL_CERT_FILE"):
            admin_client(broker.bootstrap, without, timeout_ms=3000)
        assert time.monotonic() - started < 10
