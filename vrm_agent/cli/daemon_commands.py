"""vrm-agent run: the long-running agent.

Like every command module, this one imports what a command runs inside its handler: building
the parser (for `--help` too) loads none of it, and the daemon loads no other command's.
"""

from __future__ import annotations

import argparse
import sys

from vrm_agent.cli.arguments import ensure_port_free, http_iri, port_number
from vrm_agent.cli.output import info
from vrm_agent.cli.pod_commands import cmd_pod_up
from vrm_agent.config import Config
from vrm_agent.daemon import DEFAULT_HOST, DEFAULT_PORT, logs


def _listen_address(args: argparse.Namespace, config: Config) -> tuple[str, int]:
    settings = config.settings.get("daemon", {})
    return (args.host or settings.get("host", DEFAULT_HOST),
            args.port or int(settings.get("port", DEFAULT_PORT)))


def _without_html_literals() -> None:
    """Keep rdflib from loading its HTML parser (html5rdf, 2.2 MB held for the daemon's life).
    rdflib imports it, when installed, to parse rdf:HTML literals, which no record the agent
    keeps or message it takes uses; without it such a literal stays plain text. It is
    installed only because pyshacl asks for rdflib's HTML extra."""
    if "rdflib" not in sys.modules:
        sys.modules.setdefault("html5rdf", None)  # type: ignore[arg-type]


async def cmd_run(args: argparse.Namespace, config: Config) -> int:
    _without_html_literals()
    host, port = _listen_address(args, config)
    # Logging in and reading the pod come before listening: a taken port is said first.
    ensure_port_free(host, port, what="the agent", option="--port")
    from vrm_agent.daemon.server import serve

    logs.configure(args.log_level)

    def ready(url: str) -> None:
        info(f"vrm-agent is running at {url} (discovery: {url}.well-known/vrm-agent); "
             "Ctrl-C stops it")
        info(f"Your dashboard: {url}dashboard (log in with your pod's account)")

    await serve(config, host=host, port=port, public_url=args.public_url, ready=ready)
    return 0


async def cmd_up(args: argparse.Namespace, config: Config) -> int:
    """The embedded pod (started, with its owner account, if need be), then the daemon."""
    _without_html_literals()
    ensure_port_free(*_listen_address(args, config), what="the agent", option="--port")
    pod_args = argparse.Namespace(data=args.data, port=args.pod_port, acp=args.acp,
                                  name=None, json=False, port_option="--pod-port")
    await cmd_pod_up(pod_args, config)
    info("The pod keeps running after the agent stops; 'vrm-agent pod down' stops it.")
    return await cmd_run(args, config)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser(
        "run", parents=[common], help="run the agent (the daemon vendors talk to)",
        description="Run the long-running agent: vendors negotiate with it over HTTP, and it "
        "keeps grants and tokens current. Stops cleanly on Ctrl-C or SIGTERM.")
    run.add_argument("--host", help=f"address to listen on (default {DEFAULT_HOST})")
    run.add_argument("--port", type=port_number, help=f"port (default {DEFAULT_PORT})")
    run.add_argument("--public-url", type=http_iri, help="the URL vendors use, if not http://HOST:PORT/")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(handler=cmd_run)

    up = commands.add_parser(
        "up", parents=[common], help="start the embedded pod and run the agent",
        description="For a person with no pod of their own: start (or reuse) the embedded "
        "Community Solid Server with your account, then run the agent in the foreground.")
    up.add_argument("--host", help=f"address the agent listens on (default {DEFAULT_HOST})")
    up.add_argument("--port", type=port_number, help=f"the agent's port (default {DEFAULT_PORT})")
    up.add_argument("--public-url", type=http_iri, help="the URL vendors use, if not http://HOST:PORT/")
    up.add_argument("--pod-port", type=port_number, help="the pod server's port (default 3000)")
    up.add_argument("--data", metavar="DIR", help="the pod's data folder")
    up.add_argument("--acp", action="store_true", default=None,
                    help="a new pod uses ACP instead of WAC")
    up.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    up.set_defaults(handler=cmd_up)
