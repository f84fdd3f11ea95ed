"""How every Kafka client of the project connects: TLS and SASL, configured once.

:class:`KafkaSecurity` is built from :class:`~streams.settings.Settings` (``settings.kafka_security``) and
handed to every client the project builds; each client asks it for its own keyword arguments:

- aiokafka (the ingest producer, the high-water and fast-recovery consumers, the demo's topic follower):
  :meth:`KafkaSecurity.aiokafka`;
- kafka-python (the replay/send producer, the admin client that creates and checks topics):
  :meth:`KafkaSecurity.kafka_python`;
- Faust (the worker's own consumer and producer): :meth:`KafkaSecurity.faust_credentials`, its
  ``broker_credentials`` mechanism.

All of them get the same :class:`ssl.SSLContext` shape: the CA file (else the system's CAs), the client
certificate and key when given (mutual TLS), hostname checking unless turned off.

:func:`check_tls` turns a failed first connection into a message that says which setting to look at
(a TLS handshake refused for an unknown CA, a server that does not speak TLS, a refused login), instead of
the clients' generic "unable to bootstrap" after retrying.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from streams.errors import ConfigError, KafkaRefused

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSecurity:
    """TLS and SASL settings of the Kafka connection. Secrets are kept out of ``repr``."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    key_password: str = field(default="", repr=False)
    check_hostname: bool = True

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}")
        if self.uses_sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ConfigError(f"KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}")
            if not self.sasl_username or not self.sasl_password:
                raise ConfigError(
                    f"KAFKA_SECURITY_PROTOCOL={self.protocol} needs KAFKA_SASL_USERNAME and "
                    "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)"
                )
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS)")
        if not self.uses_tls and (self.ca_file or self.cert_file):
            raise ConfigError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={self.protocol} does not use TLS "
                "(use SSL or SASL_SSL)"
            )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The one TLS context every client uses (``None`` without TLS)."""
        if not self.uses_tls:
            return None
        try:
            context = ssl.create_default_context(cafile=self.ca_file or None)
            context.check_hostname = self.check_hostname
            if not self.check_hostname:
                context.verify_mode = ssl.CERT_REQUIRED  # the chain is still verified
            if self.cert_file:
                context.load_cert_chain(self.cert_file, self.key_file, self.key_password or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the Kafka TLS files (KAFKA_SSL_*): {exc}") from None
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer`` / ``AIOKafkaConsumer``."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return kwargs

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python's ``KafkaProducer`` / ``KafkaAdminClient``."""
        return self.aiokafka()  # the same names; kafka-python also takes a ready ``ssl_context``

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for ``faust.App`` (``None``: plaintext)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context,
            )
        if self.uses_tls:
            return faust.SSLCredentials(self.ssl_context)
        return None

    def describe(self) -> str:
        """For messages: protocol, mechanism and user, never the password."""
        if self.uses_sasl:
            return f"{self.protocol} ({self.sasl_mechanism}, user {self.sasl_username!r})"
        return self.protocol


PLAINTEXT = KafkaSecurity()


def _first_server(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return host.strip("[]"), int(port)


def check_tls(bootstrap: str, security: KafkaSecurity, cause: BaseException, timeout_s: float = 5.0) -> None:
    """Raise :class:`KafkaRefused` saying which setting is wrong when the TLS handshake shows it.

    Called after a client failed to connect; returns when nothing more specific than ``cause`` is found.
    """
    if not security.uses_tls:
        return
    host, port = _first_server(bootstrap)
    context = security.ssl_context
    assert context is not None
    try:
        with (
            socket.create_connection((host, port), timeout=timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise KafkaRefused(
            f"TLS to Kafka at {host}:{port} failed: {exc.verify_message}. The broker's certificate is not "
            "signed by KAFKA_SSL_CA_FILE (or the system CAs), or its name does not match "
            f"{host!r} (KAFKA_SSL_CHECK_HOSTNAME)"
        ) from cause
    except ssl.SSLError as exc:
        raise KafkaRefused(
            f"TLS to Kafka at {host}:{port} failed: {exc.reason or exc}. Does that listener speak TLS "
            f"(KAFKA_SECURITY_PROTOCOL={security.protocol}), and does it require a client certificate "
            "(KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE)?"
        ) from cause
    except OSError:
        return
