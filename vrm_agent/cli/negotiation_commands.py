"""terms, requests: the person's standing answers to vendors, and the questions they leave open."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vrm_agent.cli.output import show, show_table
from vrm_agent.cli.session import open_negotiations, open_pod, vendor_told
from vrm_agent.config import Config
from vrm_agent.errors import VrmAgentError
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.terms import TermsStore
from vrm_agent.negotiation.decide import short
from vrm_agent.negotiation.durations import duration_text
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.terms import ROSTER
from vrm_agent.negotiation.wire import MalformedMessage, normalise, policy_from_json, policy_json


def _summary(policy: Policy) -> str:
    parts = []
    for rule in policy.rules:
        text = f"{rule.kind} {rule.action}"
        if rule.targets:
            text += " " + ",".join(short(t) for t in rule.targets)
        for c in rule.constraints:
            text += f" [{c.left} {c.operator} {','.join(short(v) for v in c.values())}]"
        parts.append(text)
    return "; ".join(parts)


async def cmd_terms(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        store = TermsStore(Ledger(session.pod, session.storage), session.webid)
        terms = await store.all()
    rows = [{"name": slug, "title": p.title, "rules": _summary(p)} for slug, p in terms.items()]
    show_table(rows, ("name", "title", "rules"), as_json=args.json)
    return 0


async def cmd_terms_show(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        policy = await TermsStore(Ledger(session.pod, session.storage), session.webid).get(
            args.name)
    print(json.dumps({"@context": "https://w3id.org/vrm-agent/protocol/v1",
                      **policy_json(policy)}, indent=2))
    return 0


def _read_policy(path: Path) -> Policy:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VrmAgentError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise VrmAgentError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or "@context" not in data:
        raise VrmAgentError(f"{path} must be a JSON-LD ODRL policy with an @context")
    try:
        return policy_from_json(normalise(data))
    except MalformedMessage as exc:
        raise VrmAgentError(f"{path}: {exc}") from exc


async def cmd_terms_add(args: argparse.Namespace, config: Config) -> int:
    if bool(args.file) == bool(args.roster):
        raise VrmAgentError("give a policy file or --roster NAME (one of them)")
    async with open_pod(config) as session:
        store = TermsStore(Ledger(session.pod, session.storage), session.webid)
        if args.roster:
            policy = await store.add_roster(args.roster)
            name = args.roster
        else:
            name = args.name or args.file.stem
            policy = await store.save(name, _read_policy(args.file), create_only=not args.replace)
    print(f"Added terms {name!r}: {_summary(policy)}")
    print("A running agent uses them within 10 seconds.")
    return 0


async def cmd_terms_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        await TermsStore(Ledger(session.pod, session.storage), session.webid).remove(args.name)
    print(f"Removed terms {args.name!r}.")
    return 0


async def cmd_requests(args: argparse.Namespace, config: Config) -> int:
    async with open_negotiations(config) as service:
        pending = await service.pending()
    if args.json:
        show_table([{
            "id": p.id, "vendor": p.vendor, "received": p.received.isoformat(timespec="seconds"),
            "asks": [{"target": a.target, "action": a.action, "purpose": a.purpose,
                      "duration": duration_text(a.duration) if a.duration else None,
                      "resources": list(p.resources.get(a.target, ()))} for a in p.asks],
            "offers": p.consideration,
        } for p in pending], (), as_json=True)
        return 0
    rows = [{
        "id": p.id, "vendor": p.vendor, "received": p.received.isoformat(timespec="seconds"),
        "asks": "; ".join(f"{short(a.target)} {a.action} for {short(a.purpose)}"
                          + (f" ({duration_text(a.duration)})" if a.duration else "")
                          + (f": {' '.join(p.resources[a.target])}"
                             if p.resources.get(a.target) else "")
                          for a in p.asks),
        "offers": p.consideration,
    } for p in pending]
    show_table(rows, ("id", "vendor", "received", "asks", "offers"), as_json=False)
    if rows:
        print("Approving shares exactly the resources listed; choose some of them with "
              "'requests approve ID --only URL ...'.")
    return 0


async def cmd_approve(args: argparse.Namespace, config: Config) -> int:
    async with open_negotiations(config) as service:
        record = await service.approve(args.id, args.only)
    if args.json:
        show(record.view(), as_json=True)
    elif record.access:
        shared = sorted({r for a in record.access for r in a.resources})
        until = max(a.until for a in record.access).isoformat(timespec="seconds")
        print(f"Agreed with {record.vendor}: it may read {', '.join(shared)} until {until}; "
              f"{vendor_told(service)}.")
    else:
        print(f"Offered {record.vendor} what your terms allow; it may accept; "
              f"{vendor_told(service)}.")
    return 0


async def cmd_deny(args: argparse.Namespace, config: Config) -> int:
    async with open_negotiations(config) as service:
        record = await service.deny(args.id, args.reason)
    print(f"Declined the request from {record.vendor}; {vendor_told(service)}.")
    return 0


async def cmd_negotiations(args: argparse.Namespace, config: Config) -> int:
    async with open_negotiations(config) as service:
        records = await service.records()
    rows = [{
        "id": r.id, "vendor": r.vendor, "state": r.state.value if r.state else None,
        "since": r.created.isoformat(timespec="seconds"),
        "until": r.until.isoformat(timespec="seconds") if r.until else None,
        "resources": " ".join(sorted({u for a in r.access for u in a.resources})) or None,
        "ended": r.ended,
    } for r in records if args.all or r.state is not State.TERMINATED]
    show_table(rows, ("id", "vendor", "state", "since", "until", "resources", "ended"),
               as_json=args.json)
    return 0


async def cmd_negotiation_show(args: argparse.Namespace, config: Config) -> int:
    async with open_negotiations(config) as service:
        record = await service.load(args.id)
    print(json.dumps({**record.view(), "vendor": record.vendor, "trace": list(record.trace),
                      "history": [f"{e} -> {s}" for e, s in record.negotiation.history]},
                     indent=2))
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    terms = commands.add_parser(
        "terms", parents=[common], help="your terms: what the agent answers vendors",
        description="Your personal terms, kept in your pod as ODRL policies. A new pod starts "
        f"with the roster: {', '.join(ROSTER)}.")
    terms.set_defaults(handler=cmd_terms)
    sub = terms.add_subparsers(dest="terms_command", metavar="COMMAND")
    show_terms = sub.add_parser("show", parents=[common], help="one policy, as JSON-LD")
    show_terms.add_argument("name")
    show_terms.set_defaults(handler=cmd_terms_show)
    add = sub.add_parser("add", parents=[common], help="add a policy (a JSON-LD file) or a "
                         "roster term")
    add.add_argument("file", nargs="?", type=Path, help="an ODRL policy in JSON-LD")
    add.add_argument("--name", help="its name (default: the file's name)")
    add.add_argument("--roster", choices=sorted(ROSTER), help="add this roster term again")
    add.add_argument("--replace", action="store_true", help="replace terms of the same name")
    add.set_defaults(handler=cmd_terms_add)
    remove = sub.add_parser("remove", parents=[common], help="remove a policy")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_terms_remove)

    negotiations = commands.add_parser(
        "negotiations", parents=[common], help="your negotiations and agreements with vendors",
        description="Negotiations still open or in force (--all: ended ones too), read from "
        "your pod.")
    negotiations.add_argument("--all", action="store_true", help="ended ones too")
    negotiations.set_defaults(handler=cmd_negotiations)
    nsub = negotiations.add_subparsers(dest="negotiations_command", metavar="COMMAND")
    show_one = nsub.add_parser("show", parents=[common],
                               help="one negotiation: state, agreement, and why")
    show_one.add_argument("id")
    show_one.set_defaults(handler=cmd_negotiation_show)

    requests = commands.add_parser(
        "requests", parents=[common], help="vendor requests waiting for your decision",
        description="Requests your terms did not decide. Approve or deny each; the vendor is "
        "told at once.")
    requests.set_defaults(handler=cmd_requests)
    rsub = requests.add_subparsers(dest="requests_command", metavar="COMMAND")
    approve = rsub.add_parser(
        "approve", parents=[common], help="agree to a request",
        description="Share exactly the resources 'requests' listed for this request, or only "
        "those named with --only (leaving out a whole item offers the vendor the rest).")
    approve.add_argument("id")
    approve.add_argument("--only", nargs="+", metavar="URL",
                         help="share only these of the listed resources")
    approve.set_defaults(handler=cmd_approve)
    deny = rsub.add_parser("deny", parents=[common], help="decline a request")
    deny.add_argument("id")
    deny.add_argument("--reason", help="what to tell the vendor")
    deny.set_defaults(handler=cmd_deny)
