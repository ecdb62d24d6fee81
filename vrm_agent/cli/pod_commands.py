"""login, whoami, and the embedded pod: pod up / status / down."""

from __future__ import annotations

import argparse
import base64
import binascii
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrm_agent.cli.arguments import ensure_port_free, http_iri, port_number
from vrm_agent.cli.output import done, info, show
from vrm_agent.cli.session import open_negotiations
from vrm_agent.config import Config, default_data_dir
from vrm_agent.daemon import DEFAULT_HOST, DEFAULT_PORT
from vrm_agent.errors import AuthenticationError

# `pod status` exits with what it found, so scripts can wait on it (README: Commands).
STATUS_ALL_RUNNING = 0
STATUS_POD_NOT_RUNNING = 3
STATUS_AGENT_NOT_RUNNING = 4
HEALTH_TIMEOUT = 2.0  # seconds: an agent that takes longer to say it is alive is not usable

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
    if not pod.running():  # said now, not after the server gave up on its port
        ensure_port_free("localhost", pod.port, what="the pod server",
                         option=getattr(args, "port_option", "--port"))
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
    if pod.owner is not None:  # the pod's login page (and so the dashboard's) asks for these
        info(f"Your pod's login: e-mail {pod.owner.email}, password in {pod.state_path} "
             "(\"owner\" > \"password\")")
    show({**who, "vocabulary": vocabulary[0], "pod_server": pod.base_url, "pid": pod.pid,
          "flavour": pod.flavour.value, "data": str(data_dir)}, as_json=args.json)
    return 0


def agent_url(config: Config) -> str:
    """Where this config's agent listens: ``run`` takes its host and port from the same
    settings, and ``http://localhost:8750/`` without them."""
    daemon = config.settings.get("daemon", {})
    return (f"http://{daemon.get('host', DEFAULT_HOST)}:{daemon.get('port', DEFAULT_PORT)}/")


def _get_json(url: str, *, also: tuple[int, ...] = ()) -> object:
    """A small JSON document from a local service, or None; ``also``: error statuses whose
    body still counts."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/ld+json, "
                                                   "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HEALTH_TIMEOUT) as response:
            body = response.read(65536)
    except urllib.error.HTTPError as exc:
        body = exc.read(65536) if exc.code in also else b""
    except (OSError, ValueError):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def agent_state(url: str, owner: str | None) -> tuple[str, object]:
    """Whether this person's agent answers at ``url``: ``running`` (with what its /health
    says of its pod), ``not running``, or ``another's`` when the agent there acts for someone
    else. 503 from /health is an agent whose pod does not answer."""
    base = url if url.endswith("/") else url + "/"
    health = _get_json(base + "health", also=(503,))
    if not isinstance(health, dict) or "status" not in health:
        return "not running", None
    if owner:
        discovery = _get_json(base + ".well-known/vrm-agent")
        acts_for = discovery.get("vrm:actsFor") if isinstance(discovery, dict) else None
        if not isinstance(acts_for, dict) or acts_for.get("@id") != owner:
            return "another's", None
    return "running", health.get("pod")


def status_code(pod_status: str, agent_status: str) -> int:
    if pod_status != "running":
        return STATUS_POD_NOT_RUNNING
    return STATUS_ALL_RUNNING if agent_status == "running" else STATUS_AGENT_NOT_RUNNING


async def cmd_pod_status(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from vrm_agent.podserver.embedded import EmbeddedPod
    from vrm_agent.podserver.process import answers

    data_dir = _data_dir(args, config)
    pod = EmbeddedPod.load(data_dir)
    storage = config.settings.get("storage")
    own_pod = not pod.exists and isinstance(storage, str) and bool(storage)
    url = args.agent_url or agent_url(config)
    if own_pod:  # a pod of one's own, not the embedded one: does it answer?
        running = await asyncio.to_thread(answers, storage)
        state = "running" if running else "not answering"
    else:
        running = pod.exists and pod.running()
        state = "running" if running else ("stopped" if pod.exists else "not created")
    owner = config.webid if own_pod else (pod.owner.webid if pod.owner else config.webid)
    agent, agent_pod = await asyncio.to_thread(agent_state, url, owner)
    show({
        "status": state,
        "pod_server": storage if own_pod else (pod.base_url if pod.exists else None),
        "embedded": not own_pod,
        "pid": pod.pid if running and not own_pod else None,
        "flavour": pod.flavour.value if pod.exists else None,
        "webid": owner,
        "data": None if own_pod else str(data_dir),
        "agent": agent,
        "agent_url": url,
        "agent_pod": agent_pod,
    }, as_json=args.json)
    if not args.json and state != "running":
        info("Start the pod with 'vrm-agent pod up' (or the pod and the agent with "
             "'vrm-agent up')." if not own_pod else "Your pod does not answer; check with "
             "your pod provider.")
    elif not args.json and agent == "another's":
        info(f"The agent at {url} acts for someone else; start yours on another port with "
             "'vrm-agent run --port N', and ask with --agent-url.")
    elif not args.json and agent != "running":
        info(f"No agent answers at {url}; start it with 'vrm-agent run'.")
    return status_code(state, agent)


async def cmd_pod_down(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.podserver.embedded import EmbeddedPod

    pod = EmbeddedPod.load(_data_dir(args, config))
    stopped = pod.stop()
    done(f"Stopped the pod server at {pod.base_url}" if stopped else
         "The pod server was not running",
         {"stopped": stopped, "pod_server": pod.base_url if pod.exists else None},
         as_json=args.json)
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    login = commands.add_parser("login", parents=[common], help="store and check pod credentials",
                                description="Store the client credentials the agent logs in "
                                "with, after checking that they work.")
    login.add_argument("--webid", required=True, type=http_iri, help="your WebID")
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
    up.add_argument("--port", type=port_number,
                    help="port on localhost (default 3000, then as before)")
    up.add_argument("--data", help="folder for the pod's data (default: your data folder)")
    up.add_argument("--acp", action="store_const", const=True, default=None,
                    help="use ACP instead of WAC (only when the pod is created)")
    up.add_argument("--name", help="your pod's name on first run")  # None: DEFAULT_POD_NAME
    up.set_defaults(handler=cmd_pod_up)
    status = pod_commands.add_parser(
        "status", parents=[common], help="are the pod and the agent running?",
        description="The pod's state (the embedded pod, or your own pod's answer) and the "
        "agent's (its /health).",
        epilog=f"Exit status: {STATUS_ALL_RUNNING} both run, {STATUS_POD_NOT_RUNNING} the pod "
        f"does not (stopped, not created, or not answering), {STATUS_AGENT_NOT_RUNNING} the "
        "pod runs and the agent does not.")
    status.add_argument("--data", help="the pod's data folder")
    status.add_argument("--agent-url", type=http_iri, metavar="URL",
                        help=f"where the agent listens (default: from the config, or "
                        f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/)"),
    status.set_defaults(handler=cmd_pod_status)
    down = pod_commands.add_parser("down", parents=[common], help="stop the pod server")
    down.add_argument("--data", help="the pod's data folder")
    down.set_defaults(handler=cmd_pod_down)
