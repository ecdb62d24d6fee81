"""Customer-held loyalty, paychoice and the r-button at the command line: ``loyalty``,
``pay add|intend|list|remove|tell``, ``vendors show``, and telling a vendor of the person's
relationship state when ``vendors set`` changes it.

Handlers import what they run; building the parser loads nothing heavy (tests/test_lazy_imports).
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import TYPE_CHECKING, Any

from vrm_agent.cli.arguments import MAX_ARGUMENT_LENGTH, http_iri, iso_date
from vrm_agent.cli.output import done, show, show_table
from vrm_agent.cli.session import open_negotiations, open_pod
from vrm_agent.config import Config
from vrm_agent.errors import VrmAgentError

if TYPE_CHECKING:
    from vrm_agent.ledger.records import Relationship, Vendor
    from vrm_agent.ledger.store import Ledger

# What `pay intend --every` accepts: the keys of vrm_agent.ledger.paychoice.FREQUENCIES.
FREQUENCY_NAMES = ("once", "weekly", "monthly", "quarterly", "yearly")
SIGNAL_WORDS = ("on", "off")


def words(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty; write a few words")
    if len(text) > MAX_ARGUMENT_LENGTH:
        raise argparse.ArgumentTypeError(f"{len(text)} characters are too many")
    return text


# -- telling vendors ---------------------------------------------------------------------------

async def tell_vendor_state(config: Config, vendor: Vendor, relationship: Relationship) -> str:
    """Send the person's relationship state to the vendor; a sentence saying how it went."""
    from vrm_agent.daemon.signals import CannotTell, tell_state

    async with open_negotiations(config) as service:
        try:
            await tell_state(service, vendor, relationship)
        except CannotTell as exc:
            return f"{vendor.name} was not told: {exc}"
    return f"{vendor.name} has been told your relationship state ({relationship.state})"


# -- vendors show ------------------------------------------------------------------------------

def relationship_json(vendor: Vendor, relationship: Relationship | None,
                      person: str) -> dict[str, Any]:
    """Both sides of the r-button for one vendor, as `vendors show` gives them."""
    started = None
    if relationship is not None and relationship.initiated_by:
        started = "you" if relationship.initiated_by == person else "the vendor"
    at = relationship.vendor_state_at if relationship else None
    return {
        "id": vendor.id, "name": vendor.name, "url": vendor.url, "webid": vendor.webid,
        "state": relationship.state if relationship else "none",
        "since": relationship.since.isoformat() if relationship and relationship.since
        else None,
        "started_by": started,
        "signal": "on" if relationship and relationship.person_signal else "off",
        "vendor_state": relationship.vendor_state if relationship else None,
        "vendor_state_at": at.isoformat() if at else None,
    }


async def cmd_vendors_show(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import LoyaltyStatement
    from vrm_agent.ledger.records import Membership, Relationship
    from vrm_agent.ledger.store import Ledger, RecordNotFound
    from vrm_agent.ledger.vendors import find_vendor

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        vendor = await find_vendor(ledger, args.vendor)
        try:
            relationship: Relationship | None = await ledger.get(Relationship, vendor.id)
        except RecordNotFound:
            relationship = None
        try:
            statement: str | None = (await ledger.get(LoyaltyStatement, vendor.id)).text
        except RecordNotFound:
            statement = None
        memberships = [m.id for m in await ledger.list(Membership) if m.vendor_id == vendor.id]
    record = {**relationship_json(vendor, relationship, session.webid),
              "loyalty_statement": statement, "memberships": memberships}
    show(record, as_json=args.json)
    return 0


# -- loyalty statements ------------------------------------------------------------------------

async def _statement_id(ledger: Ledger, vendor: str | None) -> tuple[str, str]:
    from vrm_agent.ledger.paychoice import GENERAL_STATEMENT
    from vrm_agent.ledger.vendors import find_vendor

    if vendor is None:
        return GENERAL_STATEMENT, "every vendor"
    found = await find_vendor(ledger, vendor)
    if found.id == GENERAL_STATEMENT:  # written by another app: it would replace that one
        raise VrmAgentError(
            f"{found.name}'s id {found.id!r} is the name of your statement for every vendor; "
            "add the vendor again under another id (`vrm-agent vendors add NAME --id ID`) "
            "and set its statement there")
    return found.id, found.name


async def cmd_loyalty(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import LoyaltyStatement
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        statements, vendors = await ledger.list(LoyaltyStatement), await ledger.list(Vendor)
    names = {v.id: v.name for v in vendors}
    rows = [{"vendor": s.vendor_id, "text": s.text,
             "resource": ledger.url_of(LoyaltyStatement, s.id)} for s in statements]
    if not args.json:
        rows = [{**r, "vendor": names.get(str(r["vendor"]), r["vendor"]) or "(every vendor)"}
                for r in rows]
    show_table(rows, ("vendor", "text"), as_json=args.json)
    return 0


async def cmd_loyalty_set(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import LoyaltyStatement
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        statement_id, whom = await _statement_id(ledger, args.vendor)
        # Changed in place: an agreement that shares the statement shares the new words.
        url = await ledger.save(LoyaltyStatement(statement_id, args.text))
    done(f"Your loyalty statement for {whom} is set", {
        "vendor": None if args.vendor is None else statement_id, "text": args.text.strip(),
        "resource": url}, as_json=args.json)
    return 0


async def cmd_loyalty_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import LoyaltyStatement
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        statement_id, whom = await _statement_id(ledger, args.vendor)
        url = ledger.url_of(LoyaltyStatement, statement_id)
        await _refuse_while_shared(session, url, f"your loyalty statement for {whom}")
        await ledger.delete(LoyaltyStatement, statement_id)
    done(f"Removed your loyalty statement for {whom}", {"removed": statement_id,
                                                         "resource": url}, as_json=args.json)
    return 0


async def _refuse_while_shared(session: Any, url: str, what: str) -> None:
    from datetime import UTC, datetime

    index = await session.access().index()
    now = datetime.now(UTC)
    holding = sorted(v.id for v in index.entries.values() if v.expires > now and v.covers(url))
    if holding:
        raise VrmAgentError(f"{what} is shared under grant {', '.join(holding)}; revoke that "
                            "first (`vrm-agent grants revoke ID`)")


# -- paychoice ---------------------------------------------------------------------------------

async def _recipient(ledger: Ledger, name: str, url: str | None) -> Any:
    """A vendor of the ledger when ``name`` names one (and no --url says otherwise), else a
    recipient by name."""
    from vrm_agent.ledger.paychoice import Recipient
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.vendors import match_vendor

    vendor = None if url else match_vendor(await ledger.list(Vendor), name)
    return Recipient(vendor_id=vendor.id) if vendor else Recipient(name=name.strip(), url=url)


def _new_id(prefix: str, *parts: object) -> str:
    from vrm_agent.ledger.transactions import vendor_slug

    return vendor_slug(" ".join([prefix, *(str(p) for p in parts if p)]))[:100]


async def cmd_pay_add(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.audit import AuditEvent, AuditLog
    from vrm_agent.ledger.paychoice import (
        VoluntaryPayment,
        check_currency,
        parse_amount,
        payment_json,
    )
    from vrm_agent.ledger.store import Ledger, RecordExists

    amount, _ = parse_amount(args.amount), check_currency(args.currency)  # before the pod
    when: date = args.date or date.today()
    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        recipient = await _recipient(ledger, args.recipient, args.url)
        payment = VoluntaryPayment(
            args.id or _new_id("paid", when, recipient.vendor_id or recipient.name, amount),
            recipient, amount, args.currency, when, args.purpose, args.why)
        try:
            url = await ledger.create(payment)
        except RecordExists:
            raise RecordExists(f"a payment with id {payment.id} is on file; give another --id "
                               "if this is another payment") from None
        await AuditLog(session.pod, ledger.layout).append(AuditEvent(
            "PaymentMade", actor=session.webid, resources=[url],
            vendor=ledger.layout.vendor_iri(recipient.vendor_id) if recipient.vendor_id
            else None, description=f"{amount} {payment.currency} paid by choice"))
    names = {recipient.vendor_id: args.recipient} if recipient.vendor_id else {}
    record = {**payment_json(payment, names), "resource": url}
    done(f"Recorded {amount} {payment.currency} to {record['recipient']} on {when} "
         f"({payment.id})", record, as_json=args.json)
    return 0


async def cmd_pay_intend(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import (
        FREQUENCIES,
        PaymentIntention,
        check_currency,
        intention_json,
        parse_amount,
    )
    from vrm_agent.ledger.store import Ledger, RecordExists

    amount, _ = parse_amount(args.amount), check_currency(args.currency)  # before the pod
    start: date = args.start or date.today()
    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        recipient = await _recipient(ledger, args.recipient, args.url)
        intention = PaymentIntention(
            args.id or _new_id("intend", recipient.vendor_id or recipient.name, args.every,
                               start),
            recipient, amount, args.currency, start, FREQUENCIES[args.every], args.purpose,
            args.why)
        try:
            url = await ledger.create(intention)
        except RecordExists:
            raise RecordExists(f"an intention with id {intention.id} is on file; give another "
                               "--id, or remove that one first") from None
    names = {recipient.vendor_id: args.recipient} if recipient.vendor_id else {}
    record = {**intention_json(intention, names), "resource": url}
    message = (f"Recorded your intention to pay {amount} {intention.currency} {args.every} to "
               f"{record['recipient']} from {start} ({intention.id})")
    if args.tell:  # recorded first: a vendor that cannot be told loses the person nothing
        told, callback = await _tell(config, intention.id)
        record.update(told=told.webid, callback=callback)
        message += f"; {told.name} has been told"
    done(message, record, as_json=args.json)
    return 0


async def cmd_pay_list(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import (
        PaymentIntention,
        VoluntaryPayment,
        intention_json,
        payment_json,
    )
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.store import Ledger

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        payments = await ledger.list(VoluntaryPayment)
        intentions = await ledger.list(PaymentIntention)
        names = {v.id: v.name for v in await ledger.list(Vendor)}
    rows = [payment_json(p, names) for p in sorted(payments, key=lambda p: p.when)]
    rows += [intention_json(i, names) for i in sorted(intentions, key=lambda i: i.start)]
    if not args.json:
        rows = [{**r, "when": r.get("date") or f"{r['every']} from {r['from']}",
                 "amount": f"{r['amount']} {r['currency']}"} for r in rows]
    show_table(rows, ("kind", "id", "recipient", "amount", "when", "for"), as_json=args.json)
    return 0


async def cmd_pay_remove(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.paychoice import PaymentIntention, VoluntaryPayment
    from vrm_agent.ledger.store import Ledger, RecordNotFound

    async with open_pod(config) as session:
        ledger = Ledger(session.pod, session.storage)
        for kind in (VoluntaryPayment, PaymentIntention):
            try:
                await ledger.delete(kind, args.id)  # type: ignore[type-var]
            except RecordNotFound:
                continue
            url = ledger.url_of(kind, args.id)  # type: ignore[type-var]
            break
        else:
            raise RecordNotFound(f"no payment or intention {args.id} (`vrm-agent pay list` "
                                 "lists them)")
    done(f"Removed {args.id}", {"removed": args.id, "resource": url}, as_json=args.json)
    return 0


async def _tell(config: Config, intention_id: str) -> tuple[Vendor, str]:
    """Tell the vendor an intention is for; the vendor and the callback it went to."""
    from vrm_agent.daemon.signals import CannotTell, tell_intention
    from vrm_agent.ledger.paychoice import PaymentIntention
    from vrm_agent.ledger.records import Vendor

    async with open_negotiations(config) as service:
        intention = await service.ledger.get(PaymentIntention, intention_id)
        if intention.recipient.vendor_id is None:
            raise CannotTell(f"{intention.recipient.name} is not a vendor in your ledger, so "
                             "there is no agent to tell; add it with `vrm-agent vendors add`")
        vendor = await service.ledger.get(Vendor, intention.recipient.vendor_id)
        return vendor, await tell_intention(service, vendor, intention)


async def cmd_pay_tell(args: argparse.Namespace, config: Config) -> int:
    vendor, callback = await _tell(config, args.id)
    done(f"{vendor.name} has been told of your intention {args.id}",
         {"told": vendor.webid, "intention": args.id, "callback": callback},
         as_json=args.json)
    return 0


async def paid_rows(ledger: Ledger, by: str) -> list[dict[str, object]]:
    """Voluntary payment totals and intentions, as `stats` shows them beside purchases."""
    from vrm_agent.ledger.paychoice import (
        PaymentIntention,
        VoluntaryPayment,
        intention_json,
        voluntary_totals,
    )
    from vrm_agent.ledger.records import Vendor

    payments = await ledger.list(VoluntaryPayment)
    intentions = await ledger.list(PaymentIntention)
    if not payments and not intentions:
        return []
    names = {v.id: v.name for v in await ledger.list(Vendor)}
    rows: list[dict[str, object]] = [r.to_json() for r in voluntary_totals(payments, names, by)]
    return rows + [intention_json(i, names) for i in intentions]


def show_paid(rows: list[dict[str, object]]) -> None:
    """The text form of :func:`paid_rows`, after the purchases' table."""
    totals = [r for r in rows if r["kind"] == "voluntary"]
    intended = [r for r in rows if r["kind"] == "intention"]
    if totals:
        print("\nVoluntary payments:")
        show_table(totals, ("key", "currency", "count", "total"), as_json=False)
    if intended:
        print("\nIntentions to pay:")
        show_table([{**r, "amount": f"{r['amount']} {r['currency']}"} for r in intended],
                   ("recipient", "amount", "every", "from"), as_json=False)


# -- the parser --------------------------------------------------------------------------------

def register_vendor_commands(vendors: argparse._SubParsersAction,
                             common: argparse.ArgumentParser) -> None:
    shown = vendors.add_parser(
        "show", parents=[common], help="one vendor, both sides of the relationship",
        description="One vendor: your relationship state, who started it, whether your "
        "signal (the r-button) is on for it, the state the vendor last told your agent, your "
        "loyalty statement for it and its memberships.")
    shown.add_argument("vendor", metavar="VENDOR", help="its id, name, WebID or web site")
    shown.set_defaults(handler=cmd_vendors_show)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    loyalty = commands.add_parser(
        "loyalty", parents=[common], help="your loyalty statements",
        description="Your own statements of loyalty, for one vendor or for every vendor; a "
        "vendor may read one only under an agreement for pd:Opinion, and only its own or the "
        "general one.")
    loyalty.set_defaults(handler=cmd_loyalty)
    loyalty_commands = loyalty.add_subparsers(dest="loyalty_command", metavar="COMMAND")
    set_one = loyalty_commands.add_parser("set", parents=[common], help="set a statement",
                                          description="Set your loyalty statement, in your "
                                          "words, for one vendor or (without --vendor) any.")
    set_one.add_argument("text", type=words)
    set_one.add_argument("--vendor", help="for this vendor only")
    set_one.set_defaults(handler=cmd_loyalty_set)
    drop = loyalty_commands.add_parser("remove", parents=[common], help="remove a statement",
                                       description="Remove a loyalty statement (refused while "
                                       "it is shared).")
    drop.add_argument("--vendor", help="the one for this vendor (default: the general one)")
    drop.set_defaults(handler=cmd_loyalty_remove)

    pay = commands.add_parser(
        "pay", parents=[common], help="voluntary payments and intentions to pay",
        description="Paychoice: what you paid by choice, and what you intend to pay, for "
        "things free to use.")
    pay.set_defaults(handler=cmd_pay_list)
    pay_commands = pay.add_subparsers(dest="pay_command", metavar="COMMAND")
    add = pay_commands.add_parser("add", parents=[common], help="record a voluntary payment",
                                  description="Record a payment you chose to make. RECIPIENT "
                                  "is a vendor of your ledger (id, name, WebID or web site) "
                                  "or any name, with --url for its web address.")
    intend = pay_commands.add_parser(
        "intend", parents=[common], help="record an intention to pay",
        description="Record an intention to pay: how much, how often, to whom, why, from "
        "when. --tell tells the vendor's agent at once.")
    for parser in (add, intend):
        parser.add_argument("recipient", metavar="RECIPIENT")
        parser.add_argument("amount", metavar="AMOUNT", help="like 5 or 4.50")
        parser.add_argument("currency", metavar="CURRENCY", help="three letters, like EUR")
        parser.add_argument("--url", type=http_iri,
                            help="the recipient's web address, when it is not a vendor")
        parser.add_argument("--for", dest="purpose", type=words, help="what it is for")
        parser.add_argument("--why", type=words, help="why, in your words")
        parser.add_argument("--id", help="its id (default: made from what it is)")
    add.add_argument("--date", type=iso_date, metavar="YYYY-MM-DD", help="default: today")
    add.set_defaults(handler=cmd_pay_add)
    intend.add_argument("--every", choices=FREQUENCY_NAMES, default="monthly")
    intend.add_argument("--from", dest="start", type=iso_date, metavar="YYYY-MM-DD",
                        help="default: today")
    intend.add_argument("--tell", action="store_true",
                        help="tell the vendor's agent now (signed, to its callback address)")
    intend.set_defaults(handler=cmd_pay_intend)
    listing = pay_commands.add_parser("list", parents=[common], help="payments and intentions")
    listing.set_defaults(handler=cmd_pay_list)
    remove = pay_commands.add_parser("remove", parents=[common], help="remove one")
    remove.add_argument("id")
    remove.set_defaults(handler=cmd_pay_remove)
    tell = pay_commands.add_parser(
        "tell", parents=[common], help="tell a vendor of an intention",
        description="Tell the vendor an intention is for, in a message signed by your agent, "
        "at the callback address the vendor named in its own calls to your agent.")
    tell.add_argument("id")
    tell.set_defaults(handler=cmd_pay_tell)


__all__ = ["paid_rows", "register", "register_vendor_commands", "relationship_json",
           "show_paid", "tell_vendor_state"]
