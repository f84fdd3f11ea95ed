"""``streams.partitioning.murmur2`` is Kafka's default partitioner hash, bit for bit.

Reference: kafka-python's ``murmur2`` (a transcription of the Java client's ``Utils.murmur2``), which
the rest of the ecosystem (Java, librdkafka ``murmur2_random``) agrees with.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as reference

from streams.partitioning import murmur2, partition_for


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_is_kafkas_on_any_bytes(data: bytes) -> None:
    assert murmur2(data) == reference(data)


@given(st.text(max_size=40), st.integers(1, 64))
def test_partition_of_a_key_is_the_default_partitioners(key: str, partitions: int) -> None:
    data = key.encode()
    assert partition_for(data, partitions) == (reference(data) & 0x7FFFFFFF) % partitions


def test_known_values_and_word_boundaries() -> None:
    # Every tail length (0-3 bytes after the words), and a key longer than the unpackers kept ready.
    for data in (b"", b"a", b"ab", b"abc", b"abcd", b"actor-12345", b"x" * 259, b"\xff" * 1000):
        assert murmur2(data) == reference(data)
