"""What a user sees first: ``engage --help`` speaks to users, ``engage --version`` answers, every command
explains itself."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from streams.cli import COMMANDS, build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"engage {version('engagement-streams')}"


def test_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "engaged" in text and "engage demo" in text and "engage dlq summary" in text
    # The developer's docstring (where sub-commands live in the source tree) is not the greeting.
    assert "streams/commands" not in text and "sub-command lives" not in text
    for name in COMMANDS:
        assert f"    {name} " in text, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([name, "--help"])
    assert exited.value.code == 0
    assert "usage: engage " + name in capsys.readouterr().out


@pytest.mark.parametrize("action", ["summary", "list", "show", "export", "redrive"])
def test_dlq_actions_have_help(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["dlq", action, "--help"])
    assert f"usage: engage dlq {action}" in capsys.readouterr().out


def test_dlq_needs_a_kafka(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["dlq", "summary"]) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_dlq_redrive_needs_a_selection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")  # never reached: refused before
    assert main(["dlq", "redrive"]) == 2
    assert "--all" in capsys.readouterr().err
