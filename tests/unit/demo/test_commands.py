"""``engage generate`` (writes a file: pure enough for the unit tier) and replay's pure helpers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from streams.cli import main
from streams.commands.generate import config_for
from streams.commands.replay import numbered_steps, step_size
from streams.commands.send import read_ndjson
from streams.demo.generator import DEFAULT_START_MS, GeneratorConfig, TrafficGenerator


def test_generate_writes_the_seeded_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.ndjson"
    assert main(["generate", "--events", "5000", "--out", str(out), "--seed", "4"]) == 0
    assert "wrote 5000 events" in capsys.readouterr().err
    with out.open("rb") as handle:
        events, invalid = read_ndjson(handle)
    assert invalid == []
    assert events == TrafficGenerator(GeneratorConfig.bench(4)).take(5000)
    again = tmp_path / "again.ndjson"
    assert main(["generate", "--events", "5000", "--out", str(again), "--seed", "4"]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_generate_demo_preset_with_a_start(tmp_path: Path) -> None:
    out = tmp_path / "demo.ndjson"
    assert (
        main(
            [
                "generate",
                "--events",
                "300",
                "--out",
                str(out),
                "--preset",
                "demo",
                "--start",
                "2027-03-01T00:00:00Z",
            ]
        )
        == 0
    )
    with out.open("rb") as handle:
        events, _ = read_ndjson(handle)
    assert len(events) == 300
    assert min(e.occurred_at_ms for e in events) >= 1_803_859_200_000
    assert {e.platform for e in events} > {"generic"}


def test_start_option() -> None:
    assert config_for("bench", 0, None, 123).start_ms == DEFAULT_START_MS
    assert config_for("bench", 0, "now", 1_800_000_000_000).start_ms == 1_800_000_000_000
    assert config_for("demo", 0, "1800000000000", 0).start_ms == 1_800_000_000_000
    assert main(["generate", "--events", "1", "--out", "-", "--start", "yesterday"]) == 2


def test_replay_needs_a_kafka(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"")
    assert main(["replay", str(path)]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_replay_steps() -> None:
    assert step_size(None, 500) == 20_000
    assert step_size(None, 50_000) == 50_000
    assert step_size(2000.0, 500) == 200  # about ten steps a second
    assert step_size(3.0, 500) == 1
    lines = io.BytesIO(b"".join(f"line {i}\n".encode() for i in range(1, 26)))
    steps = list(numbered_steps(lines, 10))
    assert [(first, len(chunk)) for first, chunk, _ in steps] == [(1, 10), (11, 10), (21, 5)]
    assert steps[1][1][0] == b"line 11\n"
    assert sum(size for _, _, size in steps) == len(b"".join(f"line {i}\n".encode() for i in range(1, 26)))
