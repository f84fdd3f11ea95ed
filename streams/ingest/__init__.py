"""``engage ingest``: platform webhooks in, canonical events on the interaction topics out.

- ``adapters/`` — one module per platform behind one small interface (verify, handshake, parse, map);
- ``service.py`` — the request flow: source → signature → parse → map → publish → answer;
- ``envelopes.py`` — events to batch envelopes per (topic, partition), DLQ records (pure);
- ``publisher.py`` — the Kafka edge (aiokafka, acks=all) and its in-process twin;
- ``app.py`` — the aiohttp wiring (``create_app``, ``running``, ``serve``); ``openapi.py`` — its document.
"""

from streams.ingest.app import create_app, running, serve
from streams.ingest.envelopes import Envelope
from streams.ingest.publisher import KafkaPublisher, MemoryPublisher, Publisher
from streams.ingest.service import IngestService, Reply

__all__ = [
    "Envelope",
    "IngestService",
    "KafkaPublisher",
    "MemoryPublisher",
    "Publisher",
    "Reply",
    "create_app",
    "running",
    "serve",
]
