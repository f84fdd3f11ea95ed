"""``CLICKHOUSE_DSN`` → the arguments of a clickhouse-connect client, TLS included; and the DSN as shown.

clickhouse-connect does not take TLS from a DSN's scheme: ``https://host/db`` (no port) connects with plain
HTTP to 8123, and so does ``https://host:9443/db``; only ports 443/8443 turn TLS on. Its ``verify=false``
from a query string is the (true) string ``"false"``. So the DSN is parsed here, and the client is built from
explicit arguments:

- ``https://`` means TLS on whatever port, 8443 when none is given; ``http://`` means plain HTTP, 8123;
- query parameters ``verify`` (``true``/``false``), ``ca_cert`` (a PEM path, or ``certifi``),
  ``client_cert`` and ``client_cert_key`` (mutual TLS) are the TLS options; any other parameter is passed on
  as a ClickHouse setting or client option, as clickhouse-connect does;
- ``database`` (or the path) names the database, see :func:`streams.sinks.clickhouse.database_of`.

:func:`redact` is the DSN with its password (user info or ``password=`` parameter) replaced, for every
message, log line and ``repr``. :func:`cleartext_warning` says when a password would travel unencrypted.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse, urlunparse

from streams.errors import ConfigError

DEFAULT_PORTS = {"http": 8123, "https": 8443}
TLS_OPTIONS = ("verify", "ca_cert", "client_cert", "client_cert_key")
_SECRET_PARAMS = {"password", "access_token"}


def _flag(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"CLICKHOUSE_DSN: {name}={text!r} is not a boolean")


def client_kwargs(dsn: str) -> dict[str, Any]:
    """Keyword arguments for ``clickhouse_connect.get_client`` (no database: see ``server_dsn``)."""
    parsed = urlparse(dsn)
    if parsed.scheme not in DEFAULT_PORTS:
        raise ConfigError(f"CLICKHOUSE_DSN must be http(s)://user:pass@host:port/db, not {redact(dsn)}")
    secure = parsed.scheme == "https"
    kwargs: dict[str, Any] = {
        "host": parsed.hostname or "localhost",
        "port": parsed.port or DEFAULT_PORTS[parsed.scheme],
        "interface": parsed.scheme,
        "secure": secure,
        "username": unquote(parsed.username) if parsed.username else "default",
        "password": unquote(parsed.password) if parsed.password else "",
    }
    for name, value in parse_qsl(parsed.query):
        if name == "database":
            continue
        if name in TLS_OPTIONS and not secure:
            raise ConfigError(f"CLICKHOUSE_DSN: {name} is a TLS option; use https://")
        kwargs[name] = _flag(name, value) if name == "verify" else value
    return kwargs


def redact(dsn: str) -> str:
    """The DSN with its password replaced, for messages and logs."""
    parsed = urlparse(dsn)
    if parsed.password is not None:
        parsed = parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1))
    if any(name in _SECRET_PARAMS for name, _ in parse_qsl(parsed.query)):
        query = [(k, "***" if k in _SECRET_PARAMS else v) for k, v in parse_qsl(parsed.query)]
        parsed = parsed._replace(query=urlencode(query, safe="*"))
    return urlunparse(parsed)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cleartext_warning(dsn: str) -> str | None:
    """A warning when ``dsn`` sends a password in clear text over the network (``http://`` off loopback)."""
    parsed = urlparse(dsn)
    has_password = bool(parsed.password) or any(k in _SECRET_PARAMS for k, _ in parse_qsl(parsed.query))
    if parsed.scheme == "http" and has_password and not _loopback(parsed.hostname or "localhost"):
        return (
            f"CLICKHOUSE_DSN {redact(dsn)} sends the ClickHouse password unencrypted to {parsed.hostname}: "
            "use https:// (TLS, port 8443 by default)"
        )
    return None
