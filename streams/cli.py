"""``engage``: the command line. Each sub-command lives in ``streams/commands/<name>.py``.

Settings are read from the environment once, here, and handed to the command. What users see is
:data:`DESCRIPTION` and :data:`EPILOG`, not this docstring.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from streams.errors import ConfigError, EngageError
from streams.settings import Settings
from streams.version import package_version

# Sub-command modules, in the order `engage --help` lists them. Each has `register(subparsers)`
# which adds its parser and sets `func(args, settings) -> int`.
COMMANDS = ("demo", "ingest", "worker", "report", "dlq", "db", "send", "replay", "generate", "broker")

DESCRIPTION = """\
Find out which followers are actually engaged with an account, as it happens.

engage turns social-platform webhooks into per-follower engagement: who is engaged (3 substantive
comments or shares within 30 days, by default), who lapsed, each follower's engagement score, and an
alert when an account's engagement drops.\
"""

EPILOG = """\
Start here:
  engage demo                          the whole pipeline on this machine, with generated traffic
  engage report --account ID           one account's engaged followers, ratio, advocates, activity
  engage dlq summary                   events the pipeline refused, and why

Configuration comes from environment variables (KAFKA_BOOTSTRAP_SERVERS, CLICKHOUSE_DSN, ENGAGE_*);
see the README's configuration table. `engage COMMAND --help` explains each command.\
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engage",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"streams.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings, args)
        result: int = args.func(args, settings)
        return result
    except ConfigError as exc:
        print(f"engage: configuration error: {exc}", file=sys.stderr)
        return 2
    except EngageError as exc:
        print(f"engage: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def configure_logging(settings: Settings, args: argparse.Namespace) -> None:
    """``ENGAGE_LOG_LEVEL`` / ``ENGAGE_LOG_FORMAT``; ``-v`` (info) and ``-vv`` (debug) raise the level."""
    from streams.logs import configure, secret_values

    levels = ("debug", "info", "warning", "error", "critical")
    level = settings.log_level
    if args.verbose:
        level = min(level, ("info", "debug")[min(args.verbose, 2) - 1], key=levels.index)
    configure(
        level=level,
        fmt=settings.log_format,
        component=args.command,
        secrets=secret_values(
            settings.webhook_secrets.values(), settings.meta_verify_token, settings.clickhouse_dsn
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
