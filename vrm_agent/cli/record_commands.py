"""Changing and removing what the person keeps: vendors, contact data, purchases, imports,
memberships and preferences. Every change is validated against the shapes before it is
written (the ledger's one door out), and every command answers ``--json``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from vrm_agent.cli import change_commands
from vrm_agent.cli.arguments import http_iri, iso_date
from vrm_agent.cli.output import done, info, show, show_table
from vrm_agent.cli.paychoice_commands import (
    SIGNAL_WORDS,
    register_vendor_commands,
    tell_vendor_state,
)
from vrm_agent.cli.session import open_pod
from vrm_agent.config import Config
from vrm_agent.errors import VrmAgentError

RELATIONSHIP_STATE_NAMES = ("none", "prospect", "customer", "member", "former")


def points_argument(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of zero or more")
    return value


# -- vendors -----------------------------------------------------------------------------------

async def cmd_vendors_set(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.vendors import VendorChange, change_vendor

    change = VendorChange(
        name=args.name, state=args.state,
        url="" if args.no_url else args.url, webid="" if args.no_webid else args.webid,
        signal=None if args.signal is None else args.signal == "on")
    if change == VendorChange():
        raise VrmAgentError("nothing to change: give --name, --state, --signal, --url or "
                            "--webid")
    async with open_pod(config) as session:
        vendor, relationship = await change_vendor(
            Ledger(session.pod, session.storage), args.vendor, change, person=session.webid)
    told = None
    # The r-button: with the signal on, the vendor hears of the state it may read.
    if relationship.person_signal and (args.state or args.signal == "on"):
        told = await tell_vendor_state(config, vendor, relationship)
    show({"id": vendor.id, "name": vendor.name, "state": relationship.state,
          "since": relationship.since.isoformat() if relationship.since else None,
          "url": vendor.url, "webid": vendor.webid,
          "signal": "on" if relationship.person_signal else "off", "told": told},
         as_json=args.json)
    return 0


async def cmd_vendors_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.vendors import remove_vendor

    async with open_pod(config) as session:
        index = await session.access().index()
        now = datetime.now(UTC)
        holders = sorted({v.agent for v in index.entries.values() if v.expires > now})
        removal = await remove_vendor(Ledger(session.pod, session.storage), args.vendor,
                                      with_purchases=args.with_purchases, holders=holders)
    result = {"removed": removal.vendor.id, "name": removal.vendor.name,
              "memberships_removed": list(removal.memberships),
              "preferences_removed": list(removal.preferences),
              "purchases_removed": removal.purchases_removed}
    done(f"Removed {removal.vendor.name} ({removal.vendor.id})"
         + (" with its purchases" if removal.purchases_removed else ""), result,
         as_json=args.json)
    return 0


# -- contact data ------------------------------------------------------------------------------

# `contact set` is in change_commands: a change is told to the vendors that share it.


async def cmd_contact_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import ContactUnit
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        url = ledger.url_of(ContactUnit, args.id)
        unit = await ledger.get(ContactUnit, args.id)
        index = await session.access().index()
        now = datetime.now(UTC)
        holding = sorted(v.id for v in index.entries.values()
                         if v.expires > now and v.covers(url))
        if holding:
            raise VrmAgentError(f"{unit.type} {unit.value} is shared under grant "
                                f"{', '.join(holding)}; revoke that first "
                                "(`vrm-agent grants revoke ID`)")
        await ledger.delete(ContactUnit, args.id)
    done(f"Removed {unit.type} {unit.value} ({args.id})",
         {"removed": args.id, "resource": url}, as_json=args.json)
    return 0


# -- purchases and imports ---------------------------------------------------------------------

async def cmd_transactions(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.purchases import Purchases
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.vendors import find_vendor

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        vendor_id = (await find_vendor(ledger, args.vendor)).id if args.vendor else None
        found = await Purchases(ledger).list(vendor_id=vendor_id, since=args.since,
                                             until=args.until)
        names = {v.id: v.name for v in await ledger.list(Vendor)}
    shown = found[-args.limit:] if args.limit else found
    if args.json:
        show_table([p.to_json() for p in shown], (), as_json=True)
        return 0
    rows = [{"id": p.id[:12], "date": p.date.isoformat(),
             "vendor": names.get(p.vendor_id, p.vendor_id), "description": p.description,
             "amount": f"{p.amount} {p.currency}"} for p in shown]
    show_table(rows, ("id", "date", "vendor", "description", "amount"), as_json=False)
    if len(shown) < len(found):
        info(f"(the last {len(shown)} of {len(found)}; --limit 0 shows all)")
    return 0


async def cmd_transactions_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.purchases import Purchases
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        purchases = Purchases(Ledger(session.pod, session.storage))
        chosen = await purchases.resolve(args.ids)
        removed = await purchases.remove(chosen)
    done("\n".join(f"Removed {p.date} {p.description} {p.amount} {p.currency} ({p.id[:12]})"
                   for p in chosen),
         {"removed": [p.id for p in chosen], "count": removed}, as_json=args.json)
    return 0


async def cmd_import_list(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.purchases import Purchases
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        records = await Purchases(Ledger(session.pod, session.storage)).imports()
    rows = [r.to_json() for r in records]
    if not args.json:
        rows = [{**r, "id": str(r["id"])[:12], "finished": r["finished"] or "(interrupted)"}
                for r in rows]
    show_table(rows, ("id", "finished", "chunks", "vendors_created"), as_json=args.json)
    return 0


async def cmd_import_undo(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.purchases import Purchases
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        purchases = Purchases(Ledger(session.pod, session.storage))
        record = await purchases.resolve_import(args.id)
        report = await purchases.undo(record)
    if args.json:
        show({"import": record.id, **report.to_json()}, as_json=True)
        return 0
    info(f"Undid import {record.id[:12]}: {report.removed} purchase(s) removed"
         + (f", {report.kept} kept (another import brought them too)" if report.kept else "")
         + (f", vendors removed: {', '.join(report.vendors_removed)}"
            if report.vendors_removed else ""))
    if report.unattributed:
        info(f"{report.unattributed} purchase(s) in the same documents were imported by an "
             "earlier version that did not mark its imports; remove them with "
             "`vrm-agent transactions remove ID` if they came from this file")
    return 0


# -- memberships -------------------------------------------------------------------------------

def _membership_json(m: object) -> dict[str, object]:
    out: dict[str, object] = {f: getattr(m, f)
                              for f in ("id", "vendor_id", "number", "program", "tier")}
    points, start, end, since = (getattr(m, f) for f in ("points", "valid_from",
                                                         "valid_through", "since"))
    out.update(points=None if points is None else str(points),
               valid_from=start.isoformat() if start else None,
               valid_through=end.isoformat() if end else None,
               since=since.isoformat() if since else None)
    return out


async def cmd_memberships(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Membership, Vendor
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        memberships, vendors = await ledger.list(Membership), await ledger.list(Vendor)
    names = {v.id: v.name for v in vendors}
    rows = [_membership_json(m) for m in memberships]
    if not args.json:
        rows = [{**r, "vendor": names.get(str(r["vendor_id"]), r["vendor_id"])} for r in rows]
    show_table(rows, ("id", "vendor", "program", "tier", "number", "points", "since",
                      "valid_through"),
               as_json=args.json)
    return 0


async def cmd_memberships_add(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Membership
    from vrm_agent.ledger.store import Ledger, RecordExists
    from vrm_agent.ledger.transactions import vendor_slug
    from vrm_agent.ledger.vendors import find_vendor

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        vendor = await find_vendor(ledger, args.vendor)
        membership = Membership(args.id or vendor_slug(f"{vendor.id} {args.number}"), vendor.id,
                                args.number, args.program, args.points, args.valid_from,
                                args.valid_through, args.tier, args.since)
        try:
            url = await ledger.create(membership)
        except RecordExists:
            raise RecordExists(f"a membership with id {membership.id} exists; change it with "
                               f"`vrm-agent memberships set {membership.id} ...`") from None
    show({**_membership_json(membership), "resource": url}, as_json=args.json)
    return 0


async def cmd_memberships_set(args: argparse.Namespace, config: Config) -> int:
    from dataclasses import replace

    from vrm_agent.ledger.records import Membership
    from vrm_agent.ledger.store import Ledger

    fields = {k: v for k, v in (("number", args.number), ("program", args.program),
                                ("points", args.points), ("valid_from", args.valid_from),
                                ("valid_through", args.valid_through), ("tier", args.tier),
                                ("since", args.since)) if v is not None}
    if not fields:
        raise VrmAgentError("nothing to change: give --number, --program, --tier, --points, "
                            "--since, --from or --until")
    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        changed = replace(await ledger.get(Membership, args.id), **fields)
        url = await ledger.update(changed)
    show({**_membership_json(changed), "resource": url}, as_json=args.json)
    return 0


async def cmd_memberships_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Membership

    return await _remove(args, config, Membership, "membership")


# -- preferences -------------------------------------------------------------------------------

def _preference_json(p: object) -> dict[str, object]:
    return {f: getattr(p, f) for f in ("id", "name", "value", "vendor_id")}


async def cmd_preferences(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Preference, Vendor
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        preferences, vendors = await ledger.list(Preference), await ledger.list(Vendor)
    names = {v.id: v.name for v in vendors}
    rows = [_preference_json(p) for p in preferences]
    if not args.json:
        rows = [{**r, "vendor": names.get(str(r["vendor_id"]), r["vendor_id"]) or "(all)"}
                for r in rows]
    show_table(rows, ("id", "name", "value", "vendor"), as_json=args.json)
    return 0


async def cmd_preferences_add(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Preference
    from vrm_agent.ledger.store import Ledger, RecordExists
    from vrm_agent.ledger.transactions import vendor_slug
    from vrm_agent.ledger.vendors import find_vendor

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        vendor_id = (await find_vendor(ledger, args.vendor)).id if args.vendor else None
        preference = Preference(
            args.id or vendor_slug(" ".join(filter(None, (args.name, vendor_id)))),
            args.name, args.value, vendor_id)
        try:
            url = await ledger.create(preference)
        except RecordExists:
            raise RecordExists(f"a preference with id {preference.id} exists; change it with "
                               f"`vrm-agent preferences set {preference.id} ...`") from None
    show({**_preference_json(preference), "resource": url}, as_json=args.json)
    return 0


async def cmd_preferences_set(args: argparse.Namespace, config: Config) -> int:
    from dataclasses import replace

    from vrm_agent.ledger.records import Preference
    from vrm_agent.ledger.store import Ledger
    from vrm_agent.ledger.vendors import find_vendor

    if args.name is None and args.value is None and args.vendor is None and not args.all_vendors:
        raise VrmAgentError("nothing to change: give --name, --value, --vendor or --all-vendors")
    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        current = await ledger.get(Preference, args.id)
        fields: dict[str, object] = {k: v for k, v in (("name", args.name),
                                                       ("value", args.value)) if v is not None}
        if args.vendor:
            fields["vendor_id"] = (await find_vendor(ledger, args.vendor)).id
        elif args.all_vendors:
            fields["vendor_id"] = None
        changed = replace(current, **fields)  # type: ignore[arg-type]
        url = await ledger.update(changed)
    show({**_preference_json(changed), "resource": url}, as_json=args.json)
    return 0


async def cmd_preferences_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Preference

    return await _remove(args, config, Preference, "preference")


async def _remove(args: argparse.Namespace, config: Config, kind: type, what: str) -> int:
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        url = ledger.url_of(kind, args.id)
        await ledger.delete(kind, args.id)
    done(f"Removed {what} {args.id}", {"removed": args.id, "resource": url},
         as_json=args.json)
    return 0


# -- the parser --------------------------------------------------------------------------------

def register(
    commands: argparse._SubParsersAction, common: argparse.ArgumentParser, *,
    imports: argparse._SubParsersAction, vendors: argparse._SubParsersAction,
    contact: argparse._SubParsersAction,
) -> None:
    """Add the commands that change and remove records to the parser ``ledger_commands``
    builds (its ``import``, ``vendors`` and ``contact`` commands)."""
    change = vendors.add_parser("set", parents=[common], help="change a vendor",
                                description="Change a vendor's name, web site, WebID or your "
                                "relationship state. VENDOR is its id, name, WebID or web site.")
    change.add_argument("vendor", metavar="VENDOR")
    change.add_argument("--name")
    change.add_argument("--state", choices=list(RELATIONSHIP_STATE_NAMES))
    change.add_argument("--signal", choices=SIGNAL_WORDS,
                        help="the r-button: on lets the vendor read your relationship state "
                        "and tells it of each change; off stops both")
    change.add_argument("--url", type=http_iri, help="its web site, in full (https://...)")
    change.add_argument("--webid", type=http_iri, help="its agent's WebID, in full (https://...)")
    change.add_argument("--no-url", action="store_true", help="forget its web site")
    change.add_argument("--no-webid", action="store_true", help="forget its WebID")
    change.set_defaults(handler=cmd_vendors_set)
    register_vendor_commands(vendors, common)
    remove = vendors.add_parser(
        "remove", parents=[common], help="remove a vendor",
        description="Remove a vendor with its relationship, memberships and preferences. "
        "Refused while it has access to your data (revoke first) or purchases on file.")
    remove.add_argument("vendor", metavar="VENDOR")
    remove.add_argument("--with-purchases", action="store_true",
                        help="remove its purchases too")
    remove.set_defaults(handler=cmd_vendors_remove)

    unit_set = contact.add_parser(
        "set", parents=[common], help="change a unit",
        description="Change a unit of contact data in place: vendors it is shared with read "
        "the new value from the same resource, and each vendor whose agreement shares it is "
        "told at once ('contact told ID' shows who was told and who has read it since).")
    unit_set.add_argument("id")
    unit_set.add_argument("value", nargs="?", help="the new address, number or street")
    for option in ("--label", "--locality", "--postal-code", "--region", "--country"):
        unit_set.add_argument(option)
    unit_set.set_defaults(handler=change_commands.cmd_contact_set)
    change_commands.register(contact, common)
    unit_remove = contact.add_parser("remove", parents=[common], help="remove a unit",
                                     description="Remove a unit (refused while it is shared).")
    unit_remove.add_argument("id")
    unit_remove.set_defaults(handler=cmd_contact_remove)

    listing = imports.add_parser("list", parents=[common], help="the imports on file",
                                 description="The imports the pod remembers, oldest first.")
    listing.set_defaults(handler=cmd_import_list)
    undo = imports.add_parser(
        "undo", parents=[common], help="take back one import",
        description="Remove the purchases an import brought (those another import also "
        "brought stay), the vendors it created that have no purchase left, and its record.")
    undo.add_argument("id", help="the import's id or its first characters (`import list`)")
    undo.set_defaults(handler=cmd_import_undo)

    tx = commands.add_parser("transactions", parents=[common], help="your purchases",
                             description="List your purchases, by vendor and date.")
    tx.add_argument("--vendor", help="its id, name, WebID or web site")
    tx.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD")
    tx.add_argument("--until", type=iso_date, metavar="YYYY-MM-DD")
    tx.add_argument("--limit", type=int, default=50, help="show the last N (0: all)")
    tx.set_defaults(handler=cmd_transactions)
    tx_commands = tx.add_subparsers(dest="transactions_command", metavar="COMMAND")
    tx_remove = tx_commands.add_parser("remove", parents=[common], help="remove purchases",
                                       description="Remove purchases by id (or its first "
                                       "characters, as listed).")
    tx_remove.add_argument("ids", nargs="+", metavar="ID")
    tx_remove.set_defaults(handler=cmd_transactions_remove)

    for name, listing_handler, add_handler, set_handler, remove_handler, what in (
        ("memberships", cmd_memberships, cmd_memberships_add, cmd_memberships_set,
         cmd_memberships_remove, "loyalty and membership cards"),
        ("preferences", cmd_preferences, cmd_preferences_add, cmd_preferences_set,
         cmd_preferences_remove, "what you prefer, for all vendors or one"),
    ):
        parser = commands.add_parser(name, parents=[common], help=what,
                                     description=f"Your {what}.")
        parser.set_defaults(handler=listing_handler)
        sub = parser.add_subparsers(dest=f"{name}_command", metavar="COMMAND")
        add = sub.add_parser("add", parents=[common], help="record one")
        change_one = sub.add_parser("set", parents=[common], help="change one")
        change_one.add_argument("id")
        drop = sub.add_parser("remove", parents=[common], help="remove one")
        drop.add_argument("id")
        add.set_defaults(handler=add_handler)
        change_one.set_defaults(handler=set_handler)
        drop.set_defaults(handler=remove_handler)
        if name == "memberships":
            add.add_argument("vendor", metavar="VENDOR", help="its id, name, WebID or web site")
            add.add_argument("number", help="the membership or card number")
            add.add_argument("--id", help="its id (default: from the vendor and number)")
            change_one.add_argument("--number")
            for target in (add, change_one):
                target.add_argument("--program", help="the programme's name")
                target.add_argument("--points", type=points_argument)
                target.add_argument("--from", dest="valid_from", type=iso_date,
                                    metavar="YYYY-MM-DD", help="the card is valid from")
                target.add_argument("--until", dest="valid_through", type=iso_date,
                                    metavar="YYYY-MM-DD", help="valid until")
                target.add_argument("--tier", help="the tier or level, like Gold")
                target.add_argument("--since", type=iso_date, metavar="YYYY-MM-DD",
                                    help="a member since (the card may be newer)")
        else:
            add.add_argument("name", help="what it is about, like 'newsletter'")
            add.add_argument("value", help="what you prefer, like 'none'")
            add.add_argument("--vendor", help="for this vendor only")
            add.add_argument("--id", help="its id (default: from the name and vendor)")
            change_one.add_argument("--name")
            change_one.add_argument("--value")
            change_one.add_argument("--vendor", help="for this vendor only")
            change_one.add_argument("--all-vendors", action="store_true",
                                    help="for every vendor")
