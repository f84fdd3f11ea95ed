"""CLICKHOUSE_DSN → clickhouse-connect arguments: the scheme decides TLS, whatever the port.

Before: the DSN went to clickhouse-connect as it was, which took TLS from the port only (443/8443), so
``https://user:pass@host/db`` connected with plain HTTP to 8123 and sent the password in clear.
"""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.settings import Settings
from streams.sinks.clickhouse_dsn import cleartext_warning, client_kwargs, redact


@pytest.mark.parametrize(
    ("dsn", "interface", "port", "secure"),
    [
        ("https://u:p@ch.example.com/engagement", "https", 8443, True),
        ("https://u:p@ch.example.com:9443/engagement", "https", 9443, True),
        ("https://u:p@ch.example.com:8123/engagement", "https", 8123, True),
        ("http://u:p@127.0.0.1/engagement", "http", 8123, False),
        ("http://u:p@127.0.0.1:8443/engagement", "http", 8443, False),
    ],
)
def test_the_scheme_decides_tls_on_any_port(dsn: str, interface: str, port: int, secure: bool) -> None:
    kwargs = client_kwargs(dsn)
    assert (kwargs["interface"], kwargs["port"], kwargs["secure"]) == (interface, port, secure)
    assert (kwargs["username"], kwargs["password"]) == ("u", "p")


def test_tls_options_come_from_the_query() -> None:
    kwargs = client_kwargs(
        "https://u:p%40ss@ch:8443/db?verify=false&ca_cert=/etc/ca.pem&client_cert=/c.pem"
        "&client_cert_key=/k.pem&database=other&send_receive_timeout=30"
    )
    assert kwargs["verify"] is False  # not the (true) string "false"
    assert (kwargs["ca_cert"], kwargs["client_cert"], kwargs["client_cert_key"]) == (
        "/etc/ca.pem",
        "/c.pem",
        "/k.pem",
    )
    assert kwargs["password"] == "p@ss" and "database" not in kwargs
    assert kwargs["send_receive_timeout"] == "30"
    with pytest.raises(ConfigError, match="TLS option"):
        client_kwargs("http://u:p@ch:8123/db?ca_cert=/etc/ca.pem")
    with pytest.raises(ConfigError, match="not a boolean"):
        client_kwargs("https://ch/db?verify=maybe")


def test_passwords_are_redacted_wherever_a_dsn_is_shown() -> None:
    assert redact("https://u:s3cret@ch:8443/db") == "https://u:***@ch:8443/db"
    assert "s3cret" not in redact("https://ch:8443/db?user=u&password=s3cret")
    settings = Settings.from_env(
        {"CLICKHOUSE_DSN": "https://u:s3cret@ch:8443/db", "ENGAGE_ALERTMANAGER_URL": "http://a:pw9@am:9093"}
    )
    shown = repr(settings)
    assert "s3cret" not in shown and "pw9" not in shown
    assert "https://u:***@ch:8443/db" in shown


def test_a_password_in_clear_to_a_remote_host_is_warned_about() -> None:
    assert cleartext_warning("http://u:p@ch.example.com:8123/db") is not None
    assert "p@" not in (cleartext_warning("http://u:p@ch.example.com:8123/db") or "")
    assert cleartext_warning("https://u:p@ch.example.com/db") is None
    assert cleartext_warning("http://u:p@127.0.0.1:8123/db") is None
    assert cleartext_warning("http://localhost:8123/db") is None
    assert cleartext_warning("http://ch.example.com:8123/db") is None  # no password, nothing to leak
