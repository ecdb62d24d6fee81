"""share, grants, grants revoke: the owner's hand on who may read what, and until when."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from vrm_agent.cli.arguments import duration, http_iri, moment
from vrm_agent.cli.output import info, show, show_table
from vrm_agent.cli.session import named, open_negotiations, open_pod, vendor_names, vendor_told
from vrm_agent.config import Config
from vrm_agent.errors import VrmAgentError

if TYPE_CHECKING:  # the handlers import what they run (see daemon_commands)
    from vrm_agent.access.service import GrantView

DEFAULT_SHARE = "30d"
COLUMNS = ("id", "agent", "resources", "modes", "expires")


async def cmd_share(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.expiry import start_keeper
    from vrm_agent.timeutil import TimeFormatError, utc_now

    now = utc_now()
    until = args.until or now + args.duration
    if until <= now + timedelta(seconds=1):
        raise TimeFormatError(f"the grant would end at {until:%Y-%m-%d %H:%M:%S %Z}, "
                              "which is not in the future; give a later --until")
    if args.members and (single := [r for r in args.resources if not r.endswith("/")]):
        raise VrmAgentError(f"--members shares what a container holds, and {single[0]} is "
                            "not a container (a container's address ends in /)")
    async with open_pod(config) as session:
        access = session.access()
        view = await access.grant(
            args.agent, args.resources, [args.mode], until=until, members=args.members,
            agreement=args.agreement, now=now,
        )
        await access.flush()  # the grant is in the audit log before the command returns
    if start_keeper(config.path):
        info("Started the expiry keeper: the grant ends on time even if no daemon runs.")
    if args.json:
        show(view.to_json(), as_json=True)
    else:
        print(f"Shared {', '.join(view.resources)} with {view.agent} "
              f"({', '.join(m.label for m in view.modes)}) until {view.to_json()['expires']}")
        print(f"grant id: {view.id}")
    return 0


async def cmd_grants(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        views, ended = await session.access().survey(resource=args.resource, agent=args.agent)
        names = await vendor_names(session.pod, session.storage) if views else {}
    rows = [{**v.to_json(), "agent_name": names.get(v.agent), "status": "in force"}
            for v in views]
    show_table(rows if args.json else [{**r, "agent": named(r["agent"], names)} for r in rows],
               COLUMNS, as_json=args.json)
    if ended:
        # Past their end, still in a document for a moment: they give no agreed access, and
        # the expiry pass removes them; they are not listed as in force.
        info(f"{len(ended)} grant(s) past their end and not listed: "
             f"{', '.join(v.id for v in ended)} (the agent removes them)")
    return 0


def _verb(modes: Sequence[str]) -> str:
    return " and ".join({"Read": "read", "Append": "append to"}.get(m, m.lower())
                        for m in modes)


async def cmd_revoke(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        access = session.access()
        entry = (await access.index()).entries.get(args.id)
        found = [entry] if entry else [v for v in await access.grants() if v.id == args.id]
    if found and found[0].agreement and _is_negotiation(found[0]):
        # The grant carries out an agreement: end the agreement, and tell the vendor.
        async with open_negotiations(config) as service:
            await service.revoke(args.id)
            remaining = await service.access.remaining(found[0])
        view, told = found[0], f"; {vendor_told(service)}"
    else:
        async with open_pod(config) as session:
            access = session.access()
            view = await access.revoke(args.id)
            remaining = await access.remaining(view)
            await access.flush()
        told = ""
    if args.json:
        show({**view.to_json(), "revoked": True,
              "remaining": [r.to_json() for r in remaining]}, as_json=True)
        return 0
    if not remaining:
        print(f"Revoked {view.id}: {view.agent} no longer has access to "
              f"{', '.join(view.resources)}{told}")
        return 0
    print(f"Revoked {view.id}{told}. {view.agent} still has access through other grants:")
    for access_left in remaining:
        left = access_left.to_json()
        through = f" (as a member of {left['via']})" if left["via"] else ""
        print(f"  {view.agent} can still {_verb(left['modes'])} {access_left.resource}"
              f"{through} through grant {left['grant']} until {left['expires']}")
    return 0


def _is_negotiation(view: GrantView) -> bool:
    negotiation_id = view.id.split("-", 1)[0]
    return bool(view.agreement) and negotiation_id.isalnum() and str(
        view.agreement).endswith(f"/negotiations/{negotiation_id}")


LOCK_TRIES, LOCK_PAUSE = 10, 0.2  # 2 s for a passing look at the lock to let go


async def cmd_keep_expiry(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from vrm_agent.daemon.expiry import expiry_lock, keep_until_no_grants

    while True:
        # Whoever asks whether a keeper runs takes the lock for an instant; only a lock that
        # stays taken means another keeper (or the daemon) does the work.
        for _ in range(LOCK_TRIES):
            with expiry_lock(config.path) as owner:
                if owner:
                    async with open_negotiations(config) as service:
                        await keep_until_no_grants(service)
                        await service.access.flush()
                    break
            await asyncio.sleep(LOCK_PAUSE)
        else:
            return 0
        # The lock is free now. A `share` that found it held before has already written its
        # index entry (it writes first, then looks for a keeper): look once more.
        async with open_pod(config) as session:
            if not (await session.access().index()).entries:
                return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    share = commands.add_parser(
        "share", parents=[common], help="let an agent read (or append to) resources for a time",
        description="Grant a WebID access to resources in your pod, until a time. The pod "
        "enforces it; it ends on time, or earlier with 'grants revoke'.")
    share.add_argument("resources", nargs="+", metavar="RESOURCE", type=http_iri,
                       help="resource or container URL")
    share.add_argument("--with", dest="agent", required=True, metavar="WEBID", type=http_iri,
                       help="the WebID to share with")
    length = share.add_mutually_exclusive_group()
    length.add_argument("--for", dest="duration", default=DEFAULT_SHARE, metavar="DURATION",
                        type=duration,
                        help=f"how long: 30s, 15m, 2h, 7d, 2w or P30D (default {DEFAULT_SHARE})")
    length.add_argument("--until", metavar="TIME", type=moment, help="an ISO 8601 end time")
    share.add_argument("--members", action="store_true",
                       help="on a container: its members too")
    share.add_argument("--mode", choices=["read", "append"], default="read",
                       help="read (default) or append; vendors never get write or control")
    share.add_argument("--agreement", type=http_iri, help="the agreement this grant carries out")
    share.set_defaults(handler=cmd_share)

    grants = commands.add_parser(
        "grants", parents=[common], help="list the grants in force",
        description="The grants in force, read back from your pod. A grant past its end is "
        "never listed, even while its document still holds it (the agent removes it).")
    grants.add_argument("--resource", type=http_iri, help="only grants covering this resource")
    grants.add_argument("--agent", metavar="WEBID", type=http_iri,
                        help="only grants to this WebID")
    grants.set_defaults(handler=cmd_grants)
    sub = grants.add_subparsers(dest="grants_command", metavar="COMMAND")
    revoke = sub.add_parser(
        "revoke", parents=[common], help="end a grant now",
        description="End a grant on every resource it covers, and say what access the same "
        "agent still has there through its other grants.")
    revoke.add_argument("id", help="the grant id (a negotiation's id ends its agreement)")
    revoke.set_defaults(handler=cmd_revoke)
    keeper = sub.add_parser("keep-expiry", parents=[common])
    keeper.set_defaults(handler=cmd_keep_expiry)
