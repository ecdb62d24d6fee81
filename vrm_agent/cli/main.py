"""``vrm-agent``: the entry point. Every failure the package knows becomes one line on stderr and
a non-zero exit; nothing reaches the person as a traceback."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from vrm_agent import __version__
from vrm_agent.cli import (
    access_commands,
    conformance_commands,
    daemon_commands,
    ledger_commands,
    negotiation_commands,
    pod_commands,
    vendor_commands,
)
from vrm_agent.config import Config
from vrm_agent.errors import VrmAgentError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    # Options every command accepts, after the command name as well as before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file to use (default: in your config folder)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="vrm-agent", parents=[common],
        description="Your personal VRM agent: vendor relationships in your own Solid pod.",
    )
    parser.add_argument("--version", action="version", version=f"vrm-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pod_commands.register(commands, common)
    access_commands.register(commands, common)
    daemon_commands.register(commands, common)
    ledger_commands.register(commands, common)
    negotiation_commands.register(commands, common)
    vendor_commands.register(commands, common)
    conformance_commands.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    config_path = getattr(args, "config", None)
    try:
        config = Config.load(Path(config_path).expanduser() if config_path else None)
        result = args.handler(args, config)
        if inspect.isawaitable(result):
            import asyncio  # not before: --help and --version need no event loop

            result = asyncio.run(result)
        return int(result or 0)
    except VrmAgentError as exc:
        print(f"vrm-agent: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vrm-agent: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
