"""login, whoami, and the embedded pod: pod up / status / down."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrm_agent.cli.output import info, show
from vrm_agent.cli.session import open_negotiations
from vrm_agent.config import Config, default_data_dir
from vrm_agent.errors import AuthenticationError

if TYPE_CHECKING:  # the handlers import what they run (see daemon_commands)
    from vrm_agent.pod.auth import ClientCredentials


def token_webid(access_token: str) -> str | None:
    """The ``webid`` claim of a Solid-OIDC access token (a JWT), read without verifying it:
    the token comes straight from the issuer the WebID names, over the connection we opened."""
    try:
        payload = access_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return None
    webid = claims.get("webid") if isinstance(claims, dict) else None
    return webid if isinstance(webid, str) else None


async def identity(credentials: ClientCredentials) -> dict[str, Any]:
    """Log in for real and say who we are: WebID, issuer, storage. The credentials must be the
    WebID's own: the issuer's token has to name that WebID."""
    from vrm_agent.pod.client import PodClient

    async with PodClient(credentials) as pod:
        await pod.login()
        owner = token_webid(await pod.access_token())
        if owner != credentials.webid:
            raise AuthenticationError(
                f"these credentials belong to {owner or 'no WebID'}, not to {credentials.webid}; "
                "nothing was stored")
        storage = await pod.find_storage()
        return {"webid": credentials.webid, "issuer": pod.issuer, "storage": storage}


async def cmd_login(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.pod.auth import ClientCredentials

    credentials = ClientCredentials(args.webid, args.client_id, args.client_secret)
    who = await identity(credentials)  # only credentials that work are stored
    config.set_credentials(credentials)
    config.settings["storage"] = who["storage"]
    config.save()
    info(f"Logged in; credentials stored in {config.path}")
    show(who, as_json=args.json)
    return 0


async def cmd_whoami(args: argparse.Namespace, config: Config) -> int:
    show(await identity(config.credentials()), as_json=args.json)
    return 0


def _data_dir(args: argparse.Namespace, config: Config) -> Path:
    if args.data:
        return Path(args.data).expanduser().resolve()
    remembered = config.settings.get("embedded_pod")
    return Path(remembered) if remembered else default_data_dir() / "pod"


async def cmd_pod_up(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.expiry import start_keeper
    from vrm_agent.podserver.embedded import DEFAULT_POD_NAME, prepare
    from vrm_agent.vocabulary.publish import publish_vocabulary

    data_dir = _data_dir(args, config)
    pod = prepare(data_dir, port=args.port, acp=args.acp)
    if pod.start():
        info(f"Started the pod server ({pod.flavour.value.upper()}) at {pod.base_url} "
             f"(PID {pod.pid}, log {pod.log_path})")
    else:
        info(f"The pod server already runs at {pod.base_url} (PID {pod.pid})")
    credentials = await pod.ensure_owner(DEFAULT_POD_NAME if args.name is None else args.name)
    who = await identity(credentials)
    config.set_credentials(credentials)
    config.settings["embedded_pod"] = str(data_dir)
    config.settings["storage"] = who["storage"]
    config.save()
    # Start-up reconciliation: nothing expired stays in force after the pod was down, and an
    # agreement whose grants end here ends with them (its record, its vendor told).
    async with open_negotiations(config) as service:
        agreements, _ = await service.expire_due()
        ended, remaining = await service.access.reconcile()
        vocabulary = await publish_vocabulary(service.pod, service.access,
                                              service.ledger.layout.storage)
    if agreements:
        info(f"Ended {len(agreements)} agreement(s) that reached their end.")
    if ended:
        info(f"Ended {len(ended)} expired grant(s).")
    if remaining is not None and start_keeper(config.path):
        info("Started the expiry keeper for the grants in force.")
    show({**who, "vocabulary": vocabulary[0], "pod_server": pod.base_url, "pid": pod.pid,
          "flavour": pod.flavour.value, "data": str(data_dir)}, as_json=args.json)
    return 0


async def cmd_pod_status(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.podserver.embedded import EmbeddedPod

    data_dir = _data_dir(args, config)
    pod = EmbeddedPod.load(data_dir)
    running = pod.exists and pod.running()
    show({
        "status": "running" if running else ("stopped" if pod.exists else "not created"),
        "pod_server": pod.base_url if pod.exists else None,
        "pid": pod.pid if running else None,
        "flavour": pod.flavour.value if pod.exists else None,
        "webid": pod.owner.webid if pod.owner else None,
        "data": str(data_dir),
    }, as_json=args.json)
    return 0


async def cmd_pod_down(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.podserver.embedded import EmbeddedPod

    pod = EmbeddedPod.load(_data_dir(args, config))
    if pod.stop():
        info(f"Stopped the pod server at {pod.base_url}")
    else:
        info("The pod server was not running")
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    login = commands.add_parser("login", parents=[common], help="store and check pod credentials",
                                description="Store the client credentials the agent logs in "
                                "with, after checking that they work.")
    login.add_argument("--webid", required=True, help="your WebID")
    login.add_argument("--client-id", required=True, help="the client id from your pod provider")
    login.add_argument("--client-secret", required=True, help="the client secret")
    login.set_defaults(handler=cmd_login)

    whoami = commands.add_parser("whoami", parents=[common], help="log in and show who you are",
                                 description="Authenticate and print WebID, issuer and storage.")
    whoami.set_defaults(handler=cmd_whoami)

    pod = commands.add_parser("pod", help="the embedded default pod",
                              description="Run a local Community Solid Server as your pod.")
    pod_commands = pod.add_subparsers(dest="pod_command", required=True, metavar="COMMAND")
    up = pod_commands.add_parser("up", parents=[common], help="start the pod (create it first)",
                                 description="Start the local pod server; on first run create "
                                 "your account, pod and agent credentials, and log in.")
    up.add_argument("--port", type=int, help="port on localhost (default 3000, then as before)")
    up.add_argument("--data", help="folder for the pod's data (default: your data folder)")
    up.add_argument("--acp", action="store_const", const=True, default=None,
                    help="use ACP instead of WAC (only when the pod is created)")
    up.add_argument("--name", help="your pod's name on first run")  # None: DEFAULT_POD_NAME
    up.set_defaults(handler=cmd_pod_up)
    status = pod_commands.add_parser("status", parents=[common], help="is the pod running?")
    status.add_argument("--data", help="the pod's data folder")
    status.set_defaults(handler=cmd_pod_status)
    down = pod_commands.add_parser("down", parents=[common], help="stop the pod server")
    down.add_argument("--data", help="the pod's data folder")
    down.set_defaults(handler=cmd_pod_down)
