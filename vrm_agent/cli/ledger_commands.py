"""The person's ledger at the command line: import, export, vendors, stats, and the vocabulary."""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

from vrm_agent.cli import record_commands
from vrm_agent.cli.arguments import ensure_port_free, http_iri, iso_date, port_number
from vrm_agent.cli.output import done, info, printable, show, show_table
from vrm_agent.cli.record_commands import RELATIONSHIP_STATE_NAMES
from vrm_agent.cli.session import open_pod
from vrm_agent.config import Config

EXIT_SOME_ROWS_SKIPPED = 3
# What --state (RELATIONSHIP_STATE_NAMES) and --by accept, here so that building the parser
# loads neither the vocabulary nor the statistics (the handlers import what they run, see
# daemon_commands); a test holds them to vrm_agent.vocabulary.RELATIONSHIP_STATES and
# vrm_agent.ledger.stats.GROUPINGS.
GROUPINGS = ("vendor", "month", "category")
# One address, as the contact shape wants it (vocab shapes: vcard:hasEmail), checked before the
# pod is asked so the person reads what is wrong rather than a shape's report.
EMAIL_ADDRESS = re.compile(r"[^@\s/?#]+@[^@\s/?#.]+(\.[^@\s/?#.]+)+")


async def cmd_import_transactions(args: argparse.Namespace, config: Config) -> int:
    from tqdm import tqdm

    from vrm_agent.ledger.importing import TransactionImporter, file_digest
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.transactions import (
        FormatChoice,
        ImportFileError,
        parse_file,
        read_mapping,
    )

    path = Path(args.file)
    mapping = read_mapping(args.map)
    choice = FormatChoice(encoding=args.encoding, delimiter=args.delimiter,
                          date_format=args.date_format, decimal_comma=args.decimal_comma)
    parsed = parse_file(path, mapping, choice)
    if parsed.format is not None:
        info(f"{path.name}: {parsed.format.describe()}")
    for error in parsed.errors:
        print(printable(f"{path.name}: {error}"), file=sys.stderr)
    if not parsed.transactions:
        raise ImportFileError(f"{path.name}: no transaction could be read")
    quiet = args.quiet or args.json or not sys.stderr.isatty()
    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        with tqdm(total=len(parsed.transactions), unit="tx", disable=quiet,
                  desc="importing") as bar:
            report = await TransactionImporter(ledger).run(
                parsed.transactions,
                digest=file_digest(path.read_bytes(), mapping, parsed.format),
                progress=bar.update)
    summary: dict[str, object] = {
        "file": str(path), "rows": parsed.rows, "transactions": len(parsed.transactions),
        "bad_rows": len(parsed.errors), "chunks_written": report.chunks_written,
        "chunks_already_done": report.chunks_skipped, "vendors_created": report.vendors_created,
        "pod_writes": report.pod_writes, "already_imported": report.already_complete,
    }
    if args.json:
        summary["errors"] = [error.to_json() for error in parsed.errors]
        summary["format"] = parsed.format.to_json() if parsed.format else None
    show(summary, as_json=args.json)
    if parsed.errors:
        info(f"{path.name}: {len(parsed.errors)} of {parsed.rows} rows skipped (listed above); "
             "fix them and import the file again: rows already imported are not added twice")
        return EXIT_SOME_ROWS_SKIPPED
    return 0


async def cmd_import_ledger(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.exchange import read_export, restore_ledger
    from vrm_agent.ledger.store import Ledger

    dataset = read_export(Path(args.file))
    async with open_pod(config) as session:
        report = await restore_ledger(Ledger(session.pod, session.storage), dataset,
                                      owner=session.webid, grant_again=args.grant_again)
    show({"resources": report.resources, "triples": report.triples, "grants": report.grants,
          "ended_grants": report.ended_grants, "dropped_grants": list(report.dropped_grants),
          "not_granted": list(report.not_granted)}, as_json=args.json)
    if report.not_granted and not args.json:
        info(f"{len(report.not_granted)} grant(s) in force in the file were not granted again; "
             "a backup never opens your pod unless you ask: if the file is your own, restore "
             "into an empty pod with --grant-again")
    return 0


async def cmd_export(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from vrm_agent.ledger.exchange import export_ledger, write_export
    from vrm_agent.ledger.store import Ledger

    path = Path(args.file)
    async with open_pod(config) as session:
        dataset = await export_ledger(Ledger(session.pod, session.storage))
    await asyncio.to_thread(write_export, dataset, path)
    graphs = sum(1 for g in dataset.graphs() if len(g) and g.identifier !=
                 dataset.default_graph.identifier)
    show({"file": str(path), "resources": graphs, "triples": len(dataset)}, as_json=args.json)
    return 0


async def cmd_vendors(args: argparse.Namespace, config: Config) -> int:
    import asyncio

    from vrm_agent.ledger.records import Relationship, Vendor
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        vendors, relationships = await asyncio.gather(ledger.list(Vendor),
                                                      ledger.list(Relationship))
    by_vendor = {r.vendor_id: r for r in relationships}
    rows = [{
        "id": v.id, "name": v.name,
        "state": by_vendor[v.id].state if v.id in by_vendor else "none",
        "since": by_vendor[v.id].since.isoformat() if v.id in by_vendor and
        by_vendor[v.id].since else None,
        "webid": v.webid,
        # Both sides of the r-button: whether the person's is on, and what the vendor said.
        "signal": "on" if v.id in by_vendor and by_vendor[v.id].person_signal else "off",
        "vendor_state": by_vendor[v.id].vendor_state if v.id in by_vendor else None,
    } for v in vendors]
    show_table(rows, ("id", "name", "state", "since", "signal", "vendor_state", "webid"),
               as_json=args.json, headers={"vendor_state": "THEIR STATE"})
    return 0


async def cmd_vendors_add(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Relationship, Vendor
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.transactions import vendor_id_for
    from vrm_agent.ledger.vendors import add_vendor

    vendor = Vendor(args.id or vendor_id_for(args.name), args.name, args.url, args.webid)
    since: date = args.since or date.today()
    async with open_pod(config) as session:
        relationship = Relationship(vendor.id, args.state, since=since,
                                    initiated_by=session.webid)
        url = await add_vendor(Ledger(session.pod, session.storage), vendor, relationship)
    done(f"Added {vendor.name} ({vendor.id}) as {args.state}",
         {"id": vendor.id, "name": vendor.name, "state": args.state, "since": since,
          "url": vendor.url, "webid": vendor.webid, "resource": url}, as_json=args.json)
    return 0


async def cmd_stats(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.cli.paychoice_commands import paid_rows, show_paid
    from vrm_agent.ledger.stats import ledger_spending
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        rows = await ledger_spending(ledger, args.by)
        paid = await paid_rows(ledger, args.by)
    # Voluntary payments and intentions follow the purchases, each row saying its kind.
    show_table([r.to_json() for r in rows] + paid if args.json else
               [r.to_json() for r in rows], ("key", "currency", "count", "total"),
               as_json=args.json)
    if not args.json:
        show_paid(paid)
    return 0


async def cmd_vocab_serve(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.vocabulary.http import serve_vocabulary

    ensure_port_free(args.host, args.port, what="the vocabulary server", option="--port")
    info(f"Serving the vocabulary at http://{args.host}:{args.port}/vocab (Ctrl-C stops)")
    await serve_vocabulary(args.host, args.port)
    return 0


async def cmd_contact(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import ContactUnit
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        units = await Ledger(session.pod, session.storage).list(ContactUnit)
    rows = [{"id": u.id, "type": u.type, "value": u.value, "label": u.label} for u in units]
    show_table(rows, ("id", "type", "value", "label"), as_json=args.json)
    return 0


async def cmd_contact_add(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import ContactUnit, RecordError
    from vrm_agent.ledger.store import Ledger, RecordExists
    from vrm_agent.ledger.transactions import vendor_slug

    if args.type == "email" and not EMAIL_ADDRESS.fullmatch(args.value):
        raise RecordError(f"{args.value!r} is not an e-mail address; write it like "
                          "me@example.org")
    unit_id = args.id or f"{args.type}-{vendor_slug(args.label or args.value)}"
    unit = ContactUnit(unit_id, args.type, args.value, args.label, args.locality,
                       args.postal_code, None, args.country)
    async with open_pod(config) as session:
        try:
            url = await Ledger(session.pod, session.storage).create(unit)
        except RecordExists:
            raise RecordExists(f"a contact unit with id {unit.id} exists; give this one "
                               "another id with --id") from None
    show({"id": unit.id, "type": unit.type, "value": unit.value, "resource": url},
         as_json=args.json)
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    importing = commands.add_parser("import", help="bring data into your pod",
                                    description="Import transactions, or restore a ledger.")
    kinds = importing.add_subparsers(dest="import_kind", required=True, metavar="WHAT")
    tx = kinds.add_parser(
        "transactions", parents=[common], help="purchases from a CSV or JSON file",
        description="Import purchases. CSV columns: date,vendor,description,amount,currency "
        "and optionally category,order_id,channel; other layouts with --map. The encoding, "
        "separator, date format and decimal mark are read from the file and printed; give them "
        "when the file leaves them open. Bad rows are reported by the line they start on; good "
        f"rows land (exit {EXIT_SOME_ROWS_SKIPPED} when some were skipped). Importing the same "
        "file again adds nothing; an interrupted import resumes. Negative amounts are refunds.")
    tx.add_argument("file", help="a .csv or .json file")
    tx.add_argument("--map", metavar="SPEC", help="FIELD=COLUMN,... or a JSON file of them")
    tx.add_argument("--delimiter", metavar="SEP",
                    help="column separator: comma, semicolon, tab or pipe (default: detected)")
    tx.add_argument("--encoding", help="utf-8, cp1252, latin-1, utf-16, ... (default: detected)")
    tx.add_argument("--date-format", metavar="PATTERN",
                    help="a strftime pattern such as %%d.%%m.%%Y (default: detected)")
    mark = tx.add_mutually_exclusive_group()
    mark.add_argument("--decimal-comma", dest="decimal_comma", action="store_const", const=True,
                      default=None, help="amounts are written 1.234,56 (default: detected)")
    mark.add_argument("--decimal-point", dest="decimal_comma", action="store_const",
                      const=False, help="amounts are written 1,234.56")
    tx.add_argument("--quiet", action="store_true", help="no progress bar")
    tx.set_defaults(handler=cmd_import_transactions)
    ledger = kinds.add_parser("ledger", parents=[common], help="restore an export",
                              description="Restore a ledger export into a pod with no ledger.")
    ledger.add_argument("file", help="a .trig, .jsonld or .nq file made by 'vrm-agent export'")
    ledger.add_argument("--grant-again", action="store_true",
                        help="grant again what was in force: agreements a restored negotiation "
                        "in force carries, and shares (only for a file you made yourself)")
    ledger.set_defaults(handler=cmd_import_ledger)

    export = commands.add_parser("export", parents=[common], help="the whole ledger to a file",
                                 description="Write the whole ledger to one file: TriG, or "
                                 "JSON-LD (.jsonld) or N-Quads (.nq) by extension.")
    export.add_argument("file")
    export.set_defaults(handler=cmd_export)

    vendors = commands.add_parser("vendors", parents=[common], help="your vendor relationships",
                                  description="List your relationships with vendors.")
    vendors.set_defaults(handler=cmd_vendors)
    vendor_commands = vendors.add_subparsers(dest="vendors_command", metavar="COMMAND")
    add = vendor_commands.add_parser("add", parents=[common], help="record a vendor",
                                     description="Record a vendor and your relationship.")
    add.add_argument("name")
    add.add_argument("--id", help="the vendor's id in your pod (default: from the name)")
    add.add_argument("--state", choices=list(RELATIONSHIP_STATE_NAMES), default="prospect")
    add.add_argument("--since", type=iso_date, help="YYYY-MM-DD (default: today)")
    add.add_argument("--webid", type=http_iri, help="the vendor agent's WebID")
    add.add_argument("--url", type=http_iri, help="the vendor's web site")
    add.set_defaults(handler=cmd_vendors_add)

    contact = commands.add_parser(
        "contact", parents=[common], help="your contact data, one shareable unit each",
        description="Your e-mail addresses, phone numbers and postal addresses, each its own "
        "resource in your pod, so an agreement can share one and not the others.")
    contact.set_defaults(handler=cmd_contact)
    contact_commands = contact.add_subparsers(dest="contact_command", metavar="COMMAND")
    add_contact = contact_commands.add_parser("add", parents=[common], help="add a unit")
    add_contact.add_argument("type", choices=["email", "phone", "address"])
    add_contact.add_argument("value", help="the address, number, or street address")
    add_contact.add_argument("--label", help="home, work, ...")
    add_contact.add_argument("--id", help="its id (default: made from the label or value)")
    add_contact.add_argument("--locality", help="for an address: the town")
    add_contact.add_argument("--postal-code", help="for an address")
    add_contact.add_argument("--country", help="for an address")
    add_contact.set_defaults(handler=cmd_contact_add)

    stats = commands.add_parser("stats", parents=[common], help="your spending",
                                description="Spending per vendor, month or category.")
    stats.add_argument("--by", choices=GROUPINGS, default="vendor")
    stats.set_defaults(handler=cmd_stats)

    vocab = commands.add_parser("vocab", help="the VRM vocabulary")
    vocab_commands = vocab.add_subparsers(dest="vocab_command", required=True, metavar="COMMAND")
    serve = vocab_commands.add_parser("serve", parents=[common], help="serve it over HTTP",
                                      description="Serve the vocabulary with content "
                                      "negotiation (Turtle, JSON-LD, HTML).")
    serve.add_argument("--host", default="localhost")
    serve.add_argument("--port", type=port_number, default=8751)
    serve.set_defaults(handler=cmd_vocab_serve)

    record_commands.register(commands, common, imports=kinds, vendors=vendor_commands,
                             contact=contact_commands)
