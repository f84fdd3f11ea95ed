"""Classification of driver exceptions, built the way clickhouse-connect builds them (no server needed)."""

from __future__ import annotations

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from streams.errors import FatalSinkError, SinkUnavailable
from streams.sinks.clickhouse_errors import FATAL, RETRYABLE, classify, error_code, translate


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (OperationalError("Error HTTPConnectionPool(...): [Errno 111] Connection refused"), RETRYABLE),
        (OperationalError("Error ReadTimeoutError executing HTTP request attempt 1"), RETRYABLE),
        (
            DatabaseError("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)", code=252),
            RETRYABLE,
        ),
        (
            DatabaseError("Code: 241. DB::Exception: Memory limit exceeded. (MEMORY_LIMIT_EXCEEDED)"),
            RETRYABLE,
        ),
        (
            DatabaseError("Code: 159. DB::Exception: Timeout exceeded. (TIMEOUT_EXCEEDED)", code=159),
            RETRYABLE,
        ),
        (DatabaseError("HTTP driver received HTTP status 503, server response: upstream down"), RETRYABLE),
        (ProgrammingError("Unable to open the chdb engine at '/d': Failed to create connection"), RETRYABLE),
        (ConnectionResetError("reset by peer"), RETRYABLE),
        (DatabaseError("Code: 60. DB::Exception: Table e.t does not exist. (UNKNOWN_TABLE)", code=60), FATAL),
        (DatabaseError("Code: 16. DB::Exception: No such column x. (NO_SUCH_COLUMN_IN_TABLE)"), FATAL),
        (DatabaseError("Code: 53. DB::Exception: Type mismatch. (TYPE_MISMATCH)", code=53), FATAL),
        (DatabaseError("Code: 516. DB::Exception: bad password. (AUTHENTICATION_FAILED)", code=516), FATAL),
        (DatabaseError("HTTP driver received HTTP status 404"), FATAL),
        (ProgrammingError("Unrecognized column 'zz' in table t"), FATAL),
        (ValueError("Invalid isoformat string: 'notadate'"), FATAL),
    ],
)
def test_classify(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected


def test_code_from_attribute_or_message() -> None:
    assert error_code(DatabaseError("x", code=252)) == 252
    assert (
        error_code(DatabaseError("Received ClickHouse exception, code: 60 ... Code: 60. DB::Exception")) == 60
    )
    assert error_code(DatabaseError("no code here")) is None


def test_translate_keeps_the_detail_and_says_what_to_do() -> None:
    fatal = translate(DatabaseError("Code: 60. (UNKNOWN_TABLE)", code=60), "insert of 3 rows into e.t")
    assert isinstance(fatal, FatalSinkError)
    assert "insert of 3 rows into e.t" in str(fatal) and "UNKNOWN_TABLE" in str(fatal)
    assert "engage db migrate" in str(fatal)
    busy = translate(ProgrammingError("Unable to open the chdb engine at '/d'"), "connect")
    assert isinstance(busy, SinkUnavailable)
    assert "another process" in str(busy)
    already = SinkUnavailable("x")
    assert translate(already, "y") is already
