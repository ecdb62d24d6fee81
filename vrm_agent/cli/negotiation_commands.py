"""terms, requests: the person's standing answers to vendors, and the questions they leave open."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from vrm_agent.cli.arguments import http_iri
from vrm_agent.cli.output import done, emit_json, show, show_table
from vrm_agent.cli.session import (
    PodSession,
    named,
    open_negotiations,
    open_pod,
    vendor_names,
    vendor_told,
)
from vrm_agent.config import Config
from vrm_agent.errors import PreconditionFailed, VrmAgentError

if TYPE_CHECKING:  # the handlers import what they run (see daemon_commands)
    from rdflib import Graph

    from vrm_agent.ledger.terms import TermsStore
    from vrm_agent.policy.model import Policy

# The starter roster's names, here so that building the parser loads no policy code; a test
# holds them to vrm_agent.negotiation.terms.ROSTER.
ROSTER = ("sd-base", "no-stalking", "no-third-parties", "no-marketing")


def _summary(policy: Policy) -> str:
    from vrm_agent.policy.explain import policy_text

    return policy_text(policy)


def _terms_of(session: PodSession) -> TermsStore:
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.terms import TermsStore

    return TermsStore(Ledger(session.pod, session.storage), session.webid)


async def cmd_terms(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        store = _terms_of(session)
        terms = await store.all()
    from vrm_agent.ledger.terms import terms_rows

    rows = terms_rows(terms, store.invalid)
    if args.json:
        show_table(rows, (), as_json=True)
        return 0
    show_table([{k: v for k, v in r.items() if k not in ("problems", "valid")} for r in rows],
               ("name", "title", "rules"), as_json=False)
    for slug, problems in store.invalid.items():
        print(f"Terms {slug!r} do not validate, so the agent asks you about every request they "
              f"might touch: {'; '.join(problems)}. Fix them with 'vrm-agent terms add FILE "
              f"--name {slug} --replace' or remove them.")
    return 0


async def cmd_terms_show(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.policy.explain import rule_text
    from vrm_agent.policy.validate import check

    async with open_pod(config) as session:
        store = _terms_of(session)
        graph = await store.graph_of(args.name)
        policy = await store.get(args.name)
    findings = check(policy)
    if args.json:
        emit_json({"name": args.name, "uid": policy.uid, "title": policy.title,
                   "rules": [rule_text(r) for r in policy.rules],
                   "problems": findings.problems, "warnings": findings.warnings,
                   "turtle": graph.serialize(format="turtle")})
        return 0
    print(f"# {policy.title or args.name}: " + "; ".join(rule_text(r) for r in policy.rules))
    for line in findings.problems:
        print(f"# problem: {line}")
    for line in findings.warnings:
        print(f"# note: {line}")
    print(graph.serialize(format="turtle"))
    return 0


def _read_policy(path: Path) -> tuple[Graph, Policy]:
    """The one policy in a JSON-LD or Turtle file, validated: every problem is one line that
    names the rule, and nothing is written when there is any."""
    from vrm_agent.policy.documents import PolicyDocumentError, read_document
    from vrm_agent.policy.rdf import read_policy
    from vrm_agent.policy.validate import check

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VrmAgentError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        graph = read_document(raw, turtle=path.suffix.lower() in (".ttl", ".turtle"))
    except PolicyDocumentError as exc:
        raise VrmAgentError(f"{path}: {exc}") from exc
    policy = read_policy(graph)
    findings = check(policy)
    if findings.problems:
        lines = "\n".join(f"  {path.name}: {p}" for p in findings.problems)
        raise VrmAgentError(f"{path} was not added; fix these and try again:\n{lines}")
    for warning in findings.warnings:
        print(f"Note: {warning}")
    return graph, policy


async def cmd_terms_add(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.policy.explain import rule_text

    if bool(args.file) == bool(args.roster):
        raise VrmAgentError("give a policy file or --roster NAME (one of them)")
    graph = _read_policy(args.file)[0] if args.file else None
    async with open_pod(config) as session:
        store = _terms_of(session)
        if args.roster:
            policy = await store.add_roster(args.roster)
            name = args.roster
        else:
            assert graph is not None
            name = args.name or args.file.stem
            store.url_of(name)  # a bad name is refused before anything is written
            try:
                policy = await store.save(name, graph, create_only=not args.replace)
            except PreconditionFailed:
                raise VrmAgentError(f"terms named {name!r} exist already; add --replace to "
                                    "replace them, or give these another --name") from None
    done(f"Added terms {name!r}: {_summary(policy)}\n"
         "A running agent uses them within 10 seconds.",
         {"name": name, "uid": policy.uid, "rules": [rule_text(r) for r in policy.rules]},
         as_json=args.json)
    return 0


async def cmd_terms_remove(args: argparse.Namespace, config: Config) -> int:
    async with open_pod(config) as session:
        await _terms_of(session).remove(args.name)
    done(f"Removed terms {args.name!r}.", {"name": args.name, "removed": True},
         as_json=args.json)
    return 0


async def cmd_requests(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.negotiation.decide import short
    from vrm_agent.negotiation.durations import duration_text

    async with open_negotiations(config) as service:
        pending = await service.pending()
        names = await vendor_names(service.pod, service.ledger.layout.storage) if pending else {}
    if args.json:
        show_table([{
            "id": p.id, "vendor": p.vendor, "vendor_name": names.get(p.vendor),
            "received": p.received.isoformat(timespec="seconds"),
            "asks": [{"target": a.target, "action": a.action, "purpose": a.purpose,
                      "duration": duration_text(a.duration) if a.duration else None,
                      "resources": list(p.resources.get(a.target, ()))} for a in p.asks],
            "offers": p.consideration,
        } for p in pending], (), as_json=True)
        return 0
    rows = [{
        "id": p.id, "vendor": named(p.vendor, names),
        "received": p.received.isoformat(timespec="seconds"),
        "asks": [f"{short(a.target)} {a.action} for {short(a.purpose)}"
                 + (f" ({duration_text(a.duration)})" if a.duration else "")
                 + (f": {' '.join(p.resources[a.target])}" if p.resources.get(a.target) else "")
                 for a in p.asks],
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
        show({**record.view(), "vendor_told": vendor_told(service)}, as_json=True)
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
    done(f"Declined the request from {record.vendor}; {vendor_told(service)}.",
         {**record.view(), "vendor_told": vendor_told(service)}, as_json=args.json)
    return 0


async def cmd_negotiations(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.negotiation.protocol import State

    async with open_negotiations(config) as service:
        records = await service.records()
        names = await vendor_names(service.pod, service.ledger.layout.storage) if records else {}
    rows = [{
        "id": r.id, "vendor": r.vendor, "vendor_name": names.get(r.vendor),
        "state": r.state.value if r.state else None,
        "since": r.created.isoformat(timespec="seconds"),
        "until": r.until.isoformat(timespec="seconds") if r.until else None,
        "resources": sorted({u for a in r.access for u in a.resources}),
        "ended": r.ended,
    } for r in records if args.all or r.state is not State.TERMINATED]
    if not args.json:
        rows = [{**row, "vendor": named(row["vendor"], names)} for row in rows]
    show_table(rows, ("id", "vendor", "state", "since", "until", "resources", "ended"),
               as_json=args.json)
    return 0


async def cmd_negotiation_show(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.policy.explain import report_summary
    from vrm_agent.policy.rdf import REPORT_CONTEXT, report_graph

    async with open_negotiations(config) as service:
        record = await service.load(args.id)
    if args.report:
        # The FORCE compliance reports as RDF: what ODRL tools read.
        print(report_graph({"@context": REPORT_CONTEXT, "@graph": list(record.compliance)})
              .serialize(format="turtle"))
        return 0
    emit_json({**record.view(), "vendor": record.vendor, "trace": list(record.trace),
               "history": [f"{e} -> {s}" for e, s in record.negotiation.history],
               "compliance": [report_summary(r) for r in record.compliance]})
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    terms = commands.add_parser(
        "terms", parents=[common], help="your terms: what the agent answers vendors",
        description="Your personal terms, kept in your pod as ODRL policies. A new pod starts "
        f"with the roster: {', '.join(ROSTER)}.")
    terms.set_defaults(handler=cmd_terms)
    sub = terms.add_subparsers(dest="terms_command", metavar="COMMAND")
    show_terms = sub.add_parser("show", parents=[common],
                                help="one policy: in plain words, its problems, and as Turtle")
    show_terms.add_argument("name")
    show_terms.set_defaults(handler=cmd_terms_show)
    add = sub.add_parser("add", parents=[common], help="add a policy (a JSON-LD or Turtle "
                         "file, checked before anything is written) or a roster term")
    add.add_argument("file", nargs="?", type=Path,
                     help="an ODRL policy in JSON-LD (.jsonld, .json) or Turtle (.ttl)")
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
    show_one.add_argument("--report", action="store_true",
                          help="the terms' compliance reports (FORCE model), as Turtle")
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
    approve.add_argument("--only", nargs="+", metavar="URL", type=http_iri,
                         help="share only these of the listed resources")
    approve.set_defaults(handler=cmd_approve)
    deny = rsub.add_parser("deny", parents=[common], help="decline a request")
    deny.add_argument("id")
    deny.add_argument("--reason", help="what to tell the vendor")
    deny.set_defaults(handler=cmd_deny)
