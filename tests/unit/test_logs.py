"""ENGAGE_LOG_FORMAT=json: one object per line with context; secrets redacted whoever logs them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from streams.cli import main
from streams.logs import REDACTED, configure, secret_values


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_with_component_and_context(restore_root: None) -> None:
    out = io.StringIO()
    configure(level="info", fmt="json", component="worker", stream=out)
    log = logging.getLogger("streams.worker.x")
    log.info("flushed %d events", 12, extra={"partition": 3, "events": 12})
    log.debug("not at info")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"topic": "interactions.like"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    first, second = map(orjson.loads, lines)
    assert first["message"] == "flushed 12 events" and first["level"] == "info"
    assert (first["component"], first["logger"], first["partition"], first["events"]) == (
        "worker",
        "streams.worker.x",
        3,
        12,
    )
    assert first["ts"].endswith("+00:00")
    assert second["topic"] == "interactions.like" and "ValueError: boom" in second["exc"]


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_never_written(fmt: str, restore_root: None) -> None:
    out = io.StringIO()
    secrets = secret_values(["whsec-12345"], "verify-token-9", "https://app:ch-pass-777@ch.internal:8443/db")
    configure(level="debug", fmt=fmt, component="ingest", secrets=secrets, stream=out)
    log = logging.getLogger("some.library")
    log.warning("signing with %s and %s", "whsec-12345", "verify-token-9")
    log.info(
        "connecting to %s", "https://app:ch-pass-777@ch.internal:8443/db", extra={"reason": "whsec-12345"}
    )
    log.info("other dsn http://u:p4ss@host:8123/x")
    try:
        raise RuntimeError("auth failed for ch-pass-777")
    except RuntimeError:
        log.exception("oops")
    text = out.getvalue()
    for secret in ("whsec-12345", "verify-token-9", "ch-pass-777", "p4ss"):
        assert secret not in text, (secret, text)
    assert text.count(REDACTED) >= 6


def test_level_and_format_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_root: None
) -> None:
    monkeypatch.setenv("ENGAGE_LOG_LEVEL", "debug")
    monkeypatch.setenv("ENGAGE_LOG_FORMAT", "json")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["dlq", "summary"]) == 2  # fails after logging is configured
    assert logging.getLogger().level == logging.DEBUG
    assert isinstance(logging.getLogger().handlers[0].formatter, logging.Formatter)
    logging.getLogger("t").debug("x")
    line = capsys.readouterr().err.splitlines()[-1]
    assert orjson.loads(line)["component"] == "dlq"
    monkeypatch.setenv("ENGAGE_LOG_LEVEL", "loud")
    assert main(["dlq", "summary"]) == 2
    assert "ENGAGE_LOG_LEVEL" in capsys.readouterr().err


def test_verbose_flag_raises_the_level_for_one_run(
    monkeypatch: pytest.MonkeyPatch, restore_root: None
) -> None:
    monkeypatch.setenv("ENGAGE_LOG_LEVEL", "error")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    main(["-v", "dlq", "summary"])
    assert logging.getLogger().level == logging.INFO
    monkeypatch.setenv("ENGAGE_LOG_LEVEL", "debug")
    main(["-v", "dlq", "summary"])
    assert logging.getLogger().level == logging.DEBUG  # -v never lowers it
