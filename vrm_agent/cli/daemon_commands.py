"""vrm-agent run: the long-running agent."""

from __future__ import annotations

import argparse

from vrm_agent.cli.output import info
from vrm_agent.config import Config
from vrm_agent.daemon import logs
from vrm_agent.daemon.server import DEFAULT_HOST, DEFAULT_PORT, serve


async def cmd_run(args: argparse.Namespace, config: Config) -> int:
    logs.configure(args.log_level)
    settings = config.settings.get("daemon", {})
    host = args.host or settings.get("host", DEFAULT_HOST)
    port = args.port or int(settings.get("port", DEFAULT_PORT))

    def ready(url: str) -> None:
        info(f"vrm-agent is running at {url} (discovery: {url}.well-known/vrm-agent); "
             "Ctrl-C stops it")

    await serve(config, host=host, port=port, public_url=args.public_url, ready=ready)
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser(
        "run", parents=[common], help="run the agent (the daemon vendors talk to)",
        description="Run the long-running agent: vendors negotiate with it over HTTP, and it "
        "keeps grants and tokens current. Stops cleanly on Ctrl-C or SIGTERM.")
    run.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST})")
    run.add_argument("--port", type=int, help=f"port (default {DEFAULT_PORT})")
    run.add_argument("--public-url", help="the URL vendors use, if not http://HOST:PORT/")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(handler=cmd_run)
