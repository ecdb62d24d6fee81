"""``vrm-agent``: the entry point. Every failure the package knows becomes one line on stderr and
a non-zero exit; nothing reaches the person as a traceback."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from vrm_agent import __version__
from vrm_agent.cli import (
    access_commands,
    conformance_commands,
    daemon_commands,
    intent_commands,
    ledger_commands,
    negotiation_commands,
    paychoice_commands,
    pod_commands,
    vendor_commands,
)
from vrm_agent.cli.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Situation,
    debugging,
    error_lines,
    explain,
)
from vrm_agent.cli.output import printable
from vrm_agent.config import Config


class CommandParser(argparse.ArgumentParser):
    """A parser whose complaints are one line, naming the command and where its help is."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("vrm-agent").strip()
        where = f"{command}: " if command else ""
        self.exit(EXIT_USAGE, f"vrm-agent: error: {where}{printable(message)} "
                  f"(see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    # Options every command accepts, after the command name as well as before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file to use (default: in your config folder)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output")
    parser = CommandParser(
        prog="vrm-agent", parents=[common],
        description="Your personal VRM agent: vendor relationships in your own Solid pod.",
        epilog="Errors are one line on stderr and a non-zero exit; set "
        "VRM_AGENT_DEBUG=1 to see the traceback of an unexpected one.",
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
    paychoice_commands.register(commands, common)
    intent_commands.register(commands, common)
    return parser


def _command_of(args: argparse.Namespace) -> str:
    """The command's words, ``vendors add``, from the parser's ``*_command`` destinations."""
    words = [args.command] + [str(value) for name, value in vars(args).items()
                              if name.endswith(("_command", "_kind")) and value]
    return " ".join(words)


def _run(args: argparse.Namespace) -> int:
    config_path = getattr(args, "config", None)
    config = Config.load(Path(config_path).expanduser() if config_path else None)
    args.situation = Situation(command=_command_of(args),
                               embedded_pod=bool(config.settings.get("embedded_pod")))
    if args.command not in DAEMON_COMMANDS:
        _quiet_retries()
    result = args.handler(args, config)
    if inspect.isawaitable(result):
        import asyncio  # not before: --help and --version need no event loop

        result = asyncio.run(result)
    return int(result or 0)


def _say(lines: list[str]) -> None:
    colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    prefix = "\x1b[31mvrm-agent: error:\x1b[0m" if colour else "vrm-agent: error:"
    print(f"{prefix} {lines[0]}", *lines[1:], sep="\n", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """After the reader of stdout went away: point stdout at nothing, so the interpreter's
    last flush at exit finds nowhere to fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


DAEMON_COMMANDS = ("run", "up")  # their log keeps every delivery attempt


def _quiet_retries() -> None:
    """A command says in one line whether each vendor was told; the notifier's per-attempt
    warnings are for the daemon's log, and shown here only with VRM_AGENT_DEBUG=1."""
    notify = logging.getLogger("vrm_agent.daemon.notify")
    for quiet in [h for h in notify.handlers if isinstance(h, logging.NullHandler)]:
        notify.removeHandler(quiet)  # a command run before in this process may have added one
    if debugging():
        notify.propagate = True
        logging.basicConfig(level=logging.INFO)
    else:
        notify.addHandler(logging.NullHandler())
        notify.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    args = argparse.Namespace()
    try:
        try:
            args = build_parser().parse_args(argv)  # --help, too, may meet a closed pipe
            args.json = getattr(args, "json", False)
            return _run(args)
        finally:
            sys.stdout.flush()  # a closed pipe shows here when the output was short
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("vrm-agent: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if debugging():
            raise
        message, code = explain(exc, getattr(args, "situation", Situation()))
        _say(error_lines(message))
        return code


if __name__ == "__main__":
    sys.exit(main())
