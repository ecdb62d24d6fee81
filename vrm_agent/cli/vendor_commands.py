"""vendor-demo: an example vendor agent, negotiating with a person's agent from the vendor's side.

It finds the agent from the person's WebID, asks for data for a purpose and a time, accepts a
counter-offer, waits for the person where the terms leave the decision to them, countersigns the
agreement, keeps it in its own pod, and reads what it was granted with its own token. With
``--watch`` it follows what it was granted (the person's changes reach it from the pod and
from the agent; it reads them again and says so) until the agreement ends, and shows the pod
refusing it afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrm_agent.cli.arguments import duration, http_iri
from vrm_agent.cli.output import emit_json, info, show
from vrm_agent.config import Config, default_data_dir, read_json, write_private
from vrm_agent.errors import ConfigError

if TYPE_CHECKING:  # the handlers import what they run (see daemon_commands)
    from vrm_agent.pod.auth import ClientCredentials
    from vrm_agent.vendor import Inbox, NegotiationView, Notification, VendorAgent

DEMO_VENDOR = "demo-vendor"


async def _demo_vendor(config: Config) -> ClientCredentials:
    """A vendor account on the embedded pod server, made once and kept beside its data."""
    from vrm_agent.pod.auth import ClientCredentials
    from vrm_agent.podserver.accounts import AccountApi
    from vrm_agent.podserver.embedded import EmbeddedPod

    remembered = config.settings.get("embedded_pod")
    data_dir = Path(remembered) if remembered else default_data_dir() / "pod"
    pod = EmbeddedPod.load(data_dir)
    if not pod.running():
        raise ConfigError("no vendor given and no embedded pod runs: start it with "
                          "'vrm-agent up', or pass --vendor-config")
    saved_path = data_dir / "vendor-demo.json"
    saved = read_json(saved_path)
    if saved:
        return ClientCredentials(saved["webid"], saved["client_id"], saved["client_secret"])
    async with AccountApi(pod.base_url) as api:
        account = await api.create_pod_account(
            DEMO_VENDOR, f"{DEMO_VENDOR}@vrm-agent.localhost", secrets.token_urlsafe(18))
    write_private(saved_path, {"webid": account.webid, "client_id": account.client_id,
                               "client_secret": account.client_secret})
    return account.credentials


async def _reads(vendor: VendorAgent, urls: list[str]) -> dict[str, int]:
    import asyncio

    responses = await asyncio.gather(*(vendor.read(u) for u in urls))
    return {u: r.status for u, r in zip(urls, responses, strict=True)}


async def _watch(vendor: VendorAgent, inbox: Inbox, view: NegotiationView,
                 step: Callable[..., None], *, wait: float) -> Notification:
    """Follow the granted resources until the agreement ends: through the pod's notifications
    and the agent's messages, reading a changed resource again and saying so
    (docs/protocol.md §16)."""
    from vrm_agent.errors import PodError
    from vrm_agent.vendor import ChangeFollower, VendorError

    async with ChangeFollower(vendor) as follower:
        for url in view.resources:
            try:
                await follower.follow(view, url)
                step(f"follows {url} through the person's pod (channel registered)")
            except (VendorError, PodError) as exc:
                step(f"does not follow {url} through the pod ({exc})")
        info("vendor: watching for changes and the end of the agreement (Ctrl-C stops)")
        handled: set[int] = set()
        while True:
            heard = await inbox.wait_for(
                lambda n: n.negotiation == view.url and id(n) not in handled
                and n.type in ("ContractNegotiationTerminationMessage", "DataChangedMessage"),
                timeout=wait)
            handled.add(id(heard))
            if heard.type == "ContractNegotiationTerminationMessage":
                return heard
            try:
                observed = await follower.on_message(heard)
            except (VendorError, PodError) as exc:
                step(f"told of a change it could not follow ({exc})")
                continue
            step(f"told that {observed.resource} changed; read it again", status=observed.status,
                 acknowledged=observed.acknowledged)


async def cmd_vendor_demo(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.negotiation.protocol import State
    from vrm_agent.pod.client import PodClient
    from vrm_agent.vendor import Inbox, VendorAgent, request_policy

    if args.vendor_config:
        credentials = Config.load(Path(args.vendor_config).expanduser()).credentials()
    else:
        credentials = await _demo_vendor(config)
    person = args.person or config.webid
    if not person:
        raise ConfigError("whose agent? pass --person WEBID (or log in as the person first)")
    steps: list[dict[str, Any]] = []

    def step(what: str, view: NegotiationView | None = None, **extra: Any) -> None:
        entry = {"step": what, **({"state": str(view.state)} if view else {}), **extra}
        steps.append(entry)
        info(f"vendor: {what}" + (f" -> {view.state}" if view else "")
             + "".join(f"; {k}: {v}" for k, v in extra.items()))

    async with PodClient(credentials) as pod, Inbox(port=args.inbox_port) as inbox:
        vendor = VendorAgent(pod, inbox=inbox)
        agent = await vendor.discover(person)
        step(f"found {person}'s agent at {agent.url}")
        policy = request_policy(args.ask, purpose=args.purpose,
                                duration=args.duration,
                                consideration=args.consideration)
        view = await vendor.request(agent, policy)
        step("asked for " + ", ".join(args.ask) + f" for {args.purpose}", view,
             negotiation=view.url)
        if view.awaiting_person:
            info(f"vendor: the person decides; they can run 'vrm-agent requests approve "
                 f"{view.url.rsplit('/', 1)[-1]}'")
            with contextlib.suppress(TimeoutError):  # then the status says where it stands
                await inbox.wait_for(lambda n: n.negotiation == view.url, timeout=args.wait)
            view = await vendor.status(view)
            step("heard from the person's agent", view)
        if view.state is State.OFFERED and args.accept_counter:
            view = await vendor.accept(view)
            step("accepted the counter-offer", view)
        reads: dict[str, int] = {}
        if view.state is State.AGREED:
            view = await vendor.verify(view)
            step("countersigned the agreement", view)
            kept = await vendor.keep(view, await pod.find_storage() + "vrm-vendor/agreements/")
            step("kept the signed agreement in its own pod", location=kept)
            reads = await _reads(vendor, view.resources)
            step("read the granted data", reads=reads)
        summary: dict[str, Any] = {
            "negotiation": view.url, "state": str(view.state), "reasons": list(view.reasons),
            "resources": view.resources, "reads": reads,
            "until": [a.until.isoformat() for a in view.access],
        }
        if args.watch and view.state is State.FINALIZED:
            ended = await _watch(vendor, inbox, view, step, wait=args.wait)
            step(f"told by {ended.sender} that the agreement ended", event=ended.event)
            summary["ended"] = ended.event
            summary["reads_after"] = await _reads(vendor, view.resources)
            step("read again", reads=summary["reads_after"])
    if args.json:
        emit_json({**summary, "steps": steps})
    else:
        show({k: v for k, v in summary.items() if v not in ([], {}, None)}, as_json=False)
    return 0 if view.state in (State.FINALIZED, State.TERMINATED) else 3


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    demo = commands.add_parser(
        "vendor-demo", parents=[common], help="run an example vendor against a person's agent",
        description="An example vendor agent: finds the person's agent from their WebID, asks "
        "for data, countersigns the agreement and reads what it was granted with its own "
        "credentials. Without --vendor-config it uses a demo vendor account on the embedded "
        "pod server.")
    demo.add_argument("--person", metavar="WEBID", type=http_iri,
                      help="the person (default: this config's)")
    demo.add_argument("--vendor-config", metavar="PATH",
                      help="a config file with the vendor's own credentials")
    demo.add_argument("--ask", action="append", metavar="CATEGORY_OR_URL",
                      help="a DPV personal-data category (pd:EmailAddress) or a resource URL; "
                      "repeatable (default pd:EmailAddress)")
    demo.add_argument("--purpose", default="dpv:DeliveryOfGoods", help="a DPV purpose")
    demo.add_argument("--for", dest="duration", default="7d", metavar="DURATION", type=duration,
                      help="how long (default 7d)")
    demo.add_argument("--consideration", help="what the vendor offers in return")
    demo.add_argument("--no-accept-counter", dest="accept_counter", action="store_false",
                      help="do not accept a counter-offer")
    demo.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                      help="how long to wait for the person (default 300)")
    demo.add_argument("--watch", action="store_true",
                      help="stay until the agreement ends, following changes of what was "
                      "granted, then read again")
    demo.add_argument("--inbox-port", type=int, default=0, help="port for the vendor's inbox")
    demo.set_defaults(handler=cmd_vendor_demo, ask=None)

    def with_default_ask(args: argparse.Namespace, config: Config) -> Any:
        args.ask = args.ask or ["pd:EmailAddress"]
        return cmd_vendor_demo(args, config)

    demo.set_defaults(handler=with_default_ask)
