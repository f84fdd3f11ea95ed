"""A ClickHouse HTTP endpoint over chDB, shared by several worker processes, that can be taken down.

No ClickHouse server runs on these machines, and chDB is in-process: two workers cannot share one
chDB data directory, and nothing outside a worker can make its embedded ClickHouse unwritable. This
process holds one real chDB engine and answers ClickHouse's HTTP interface for what the workers'
clickhouse-connect client sends (queries, commands, Native inserts with their settings), so the
workers run their production ``http://`` code path against one shared, real ClickHouse engine, and
``insert_deduplication_token`` deduplicates across workers as it does on a server.

Fault control: after ``POST /__chaos/down`` every request gets HTTP 503 with no ClickHouse error
code, as a load balancer in front of a dead server answers; after ``/__chaos/lossy`` half the inserts
are applied and then their connection drops unanswered, as when the server wrote a block and the response
was lost (the client must retry with the same deduplication token); ``/__chaos/up`` ends either.

Run: ``python -m tests.chaos.chfacade --path DIR --port PORT``.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import re
import socket
import tempfile
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Request parameters that are transport options, not ClickHouse settings for the query.
_TRANSPORT = {
    "query",
    "database",
    "client_protocol_version",
    "session_id",
    "session_timeout",
    "session_check",
    "query_id",
    "default_format",
    "wait_end_of_query",
    "enable_http_compression",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close",
    "user",
    "password",
    "compress",
    "decompress",
}
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)\s*$", re.IGNORECASE | re.DOTALL)
_CODE = re.compile(r"Code:\s*(\d+)")
# An INSERT whose statement leads the body, its data after the first line break.
_INSERT_BODY = re.compile(rb"^\s*(INSERT\s+INTO\s+[^\n]+?\s+FORMAT\s+\w+)[ \t]*\r?\n", re.IGNORECASE)


def _decompress(data: bytes, encoding: str | None) -> bytes:
    if not encoding or not data:
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "lz4":
        import lz4.frame

        out: bytes = lz4.frame.decompress(data)
        return out
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    raise ValueError(f"unsupported Content-Encoding {encoding}")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """One chDB connection, one statement at a time (chDB's session state is not per request)."""

    def __init__(self, path: str) -> None:
        import chdb

        self._conn = chdb.connect(path)
        self._lock = threading.Lock()
        self.down = False
        self.lossy = False
        self._spool = tempfile.mkdtemp(prefix="chfacade-")

    def run(
        self, query: str, data: bytes, database: str | None, settings: dict[str, str], binds: dict[str, str]
    ) -> bytes:
        with self._lock:
            cursor_db = database or "default"
            self._conn.query(f"USE {cursor_db}", "TabSeparated")
            names = list(settings)
            for name in names:
                self._conn.query(f"SET {name} = {_quote(settings[name])}", "TabSeparated")
            try:
                insert = _INSERT.match(query)
                if insert and data:
                    spool = os.path.join(self._spool, "block")
                    with open(spool, "wb") as f:
                        f.write(data)
                    sql = (
                        f"INSERT INTO {insert.group(1)} FROM INFILE {_quote(spool)} FORMAT {insert.group(2)}"
                    )
                    self._conn.query(sql, "TabSeparated")
                    return b""
                fmt_match = _FORMAT.search(query)
                fmt = fmt_match.group(1) if fmt_match else "TabSeparated"
                result = self._conn.query(query, fmt, params=binds)
                return bytes(result.bytes()) if result is not None else b""
            finally:
                for name in names:
                    self._conn.query(f"SET {name} = DEFAULT", "TabSeparated")


class Handler(BaseHTTPRequestHandler):
    engine: Engine
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        self._handle(body)

    def _read_chunked(self) -> bytes:
        out = bytearray()
        while True:
            size = int(self.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                self.rfile.readline()
                return bytes(out)
            out += self.rfile.read(size)
            self.rfile.readline()

    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path in ("/__chaos/down", "/__chaos/up", "/__chaos/lossy"):
            mode = url.path.rsplit("/", 1)[1]
            self.engine.down, self.engine.lossy = mode == "down", mode == "lossy"
            self._answer(200, b"ok\n")
            return
        if url.path == "/ping":
            self._answer(200, b"Ok.\n")
            return
        if self.engine.down:
            self._answer(503, b"Service Unavailable (chaos)\n", {"Content-Type": "text/plain"})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        try:
            body = _decompress(body, self.headers.get("Content-Encoding"))
            if content_type.startswith("multipart/form-data"):
                params.update(_form_fields(content_type, body))
                body = b""
            query = params.get("query", "")
            leading = None if query else _INSERT_BODY.match(body)
            if leading:
                query, body = leading.group(1).decode(), body[leading.end() :]
            elif not query:
                query, body = body.decode(), b""
            elif body and not _INSERT.match(query):
                query, body = f"{query}\n{body.decode()}", b""
            settings = {k: v for k, v in params.items() if k not in _TRANSPORT and not k.startswith("param_")}
            binds = {k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")}
            result = self.engine.run(query, body, params.get("database"), settings, binds)
            if self.engine.lossy and _INSERT.match(query) and random.random() < 0.5:
                # The block is in; the connection drops before any answer. (A 503 would not do: the
                # driver itself re-sends the identical request, token included, on a 503.)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
        except Exception as exc:  # every engine error goes back as ClickHouse sends it
            message = str(exc)
            code = _CODE.search(message)
            headers = {"Content-Type": "text/plain"}
            if code:
                headers["X-ClickHouse-Exception-Code"] = code.group(1)
            self._answer(500, f"{message}\n".encode(), headers)
            return
        self._answer(
            200,
            result,
            {
                "Content-Type": "application/octet-stream",
                "X-ClickHouse-Summary": '{"read_rows":"0","written_rows":"0"}',
                "X-ClickHouse-Timezone": "UTC",
                "X-ClickHouse-Server-Display-Name": "chfacade",
            },
        )


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    from email.parser import BytesParser
    from email.policy import HTTP

    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[str(name)] = (
                part.get_content()
                if part.get_content_maintype() == "text"
                else part.get_payload(decode=True).decode()
            )
    return fields


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    Handler.engine = Engine(args.path)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
