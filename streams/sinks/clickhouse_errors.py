"""Which ClickHouse failures are worth retrying: driver exceptions → :mod:`streams.errors`.

*Retryable* (:class:`~streams.errors.SinkUnavailable`): the server cannot be reached or is pushing back —
connection refused, timeouts, HTTP 5xx without a ClickHouse code, too many parts, memory limits, a replica
or Keeper in trouble, and an embedded chDB whose data directory another process holds. The same batch,
tried later, can succeed.

*Fatal* (:class:`~streams.errors.FatalSinkError`): the server understood the request and refuses it for a
reason time does not fix — unknown table or column, type mismatch, syntax, permissions, a value the driver
cannot serialise into the column type. Any other server error code is fatal too: stopping the worker (its
offsets are not committed, nothing is lost) beats retrying a deterministic error forever.
"""

from __future__ import annotations

import re
from typing import Final

from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from streams.errors import FatalSinkError, SinkUnavailable

RETRYABLE: Final = "retryable"
FATAL: Final = "fatal"

# ClickHouse server error codes (system.errors / errorCodeToName) that mean "try again later".
RETRYABLE_CODES: Final[frozenset[int]] = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        173,  # CANNOT_ALLOCATE_MEMORY
        201,  # QUOTA_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        225,  # NO_ZOOKEEPER
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY (a replica lost Keeper)
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        373,  # SESSION_IS_LOCKED
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)

_CODE = re.compile(r"\bCode:\s*(\d+)")
_HTTP_STATUS = re.compile(r"HTTP status (\d{3})")
# chDB: another process (a running worker) holds the data directory, or this process opened another path.
CHDB_ENGINE_BUSY: Final = "Unable to open the chdb engine"


def error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of a driver exception, from its attribute or its message."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def classify(exc: BaseException) -> str:
    """:data:`RETRYABLE` or :data:`FATAL`."""
    if isinstance(exc, SinkUnavailable):
        return RETRYABLE
    if isinstance(exc, FatalSinkError):
        return FATAL
    if isinstance(exc, (OperationalError, ConnectionError, TimeoutError)):
        return RETRYABLE
    if CHDB_ENGINE_BUSY in str(exc):
        return RETRYABLE
    code = error_code(exc) if isinstance(exc, DatabaseError) else None
    if code is not None:
        return RETRYABLE if code in RETRYABLE_CODES else FATAL
    if isinstance(exc, DatabaseError):
        status = _HTTP_STATUS.search(str(exc))
        if status and status.group(1).startswith("5"):
            return RETRYABLE  # a proxy or load balancer in front of ClickHouse answered, not ClickHouse
        return FATAL
    if isinstance(exc, OSError):
        return RETRYABLE
    return FATAL


def translate(exc: BaseException, what: str) -> SinkUnavailable | FatalSinkError:
    """The project error to raise for ``exc``; ``what`` (e.g. ``insert into db.t``) goes in the message."""
    if isinstance(exc, (SinkUnavailable, FatalSinkError)):
        return exc
    detail = f"{type(exc).__name__}: {exc}".strip()
    if classify(exc) == RETRYABLE:
        if CHDB_ENGINE_BUSY in detail:
            detail += (
                " — the embedded ClickHouse data directory is held by another process (a running worker?); "
                "stop it, or point CLICKHOUSE_DSN at a ClickHouse server"
            )
        return SinkUnavailable(f"ClickHouse unavailable during {what}: {detail}")
    return FatalSinkError(
        f"ClickHouse rejected {what}: {detail}. This is not transient (schema mismatch?): "
        "run `engage db status` / `engage db migrate` and check the table definitions"
    )
