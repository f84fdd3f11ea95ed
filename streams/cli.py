"""``engage``: the command line. Each sub-command lives in ``streams/commands/<name>.py``.

Settings are read from the environment once, here, and handed to the command.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from streams.errors import ConfigError, EngageError
from streams.settings import Settings

# Sub-command modules, in the order `engage --help` lists them. Each has `register(subparsers)`
# which adds its parser and sets `func(args, settings) -> int`.
COMMANDS = ("broker", "send", "ingest", "worker", "generate", "replay", "db", "report", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="engage", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"streams.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
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


if __name__ == "__main__":
    sys.exit(main())
