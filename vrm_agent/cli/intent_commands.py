"""intent: what the person wants, put out for vendors to answer (a personal RFP), the offers
they make, and the one the person accepts."""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING

from vrm_agent.cli.arguments import http_iri, iso_date
from vrm_agent.cli.output import done, show, show_table
from vrm_agent.cli.session import PodSession, open_pod
from vrm_agent.config import Config
from vrm_agent.daemon import DEFAULT_HOST, DEFAULT_PORT
from vrm_agent.errors import VrmAgentError

if TYPE_CHECKING:  # the handlers import what they run (see daemon_commands)
    from vrm_agent.daemon.intents import IntentService

_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,4})?")
_CURRENCY = re.compile(r"[A-Za-z]{3}")


def budget(text: str) -> Decimal:
    if not _AMOUNT.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount; write it like 1200 or "
                                         "1200.50")
    return Decimal(text.strip())


def currency_code(text: str) -> str:
    if not _CURRENCY.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a currency code like EUR or USD")
    return text.strip().upper()


@asynccontextmanager
async def open_intents(config: Config) -> AsyncIterator[tuple[IntentService, PodSession]]:
    """The intent service as a command uses it: vendors are told, and the audit log written,
    before the command returns (the daemon's rules for where messages may go)."""
    from vrm_agent.daemon.intents import IntentService
    from vrm_agent.daemon.notify import Notifier
    from vrm_agent.integrity.keys import SigningKey

    async with open_pod(config) as session:
        agent_url = await _agent_url(session, config)
        key = SigningKey.from_secret(config.signing_secret())
        await session.pod.access_token()  # logged in: the issuer is known
        notifier = Notifier(key, storage=session.storage, agent_url=agent_url,
                            issuer=session.pod.issuer)
        service = IntentService(session.pod, owner=session.webid, storage=session.storage,
                                agent_url=agent_url, signing_key=key, access=session.access(),
                                notifier=notifier)
        try:
            yield service, session
        finally:
            await service.flush()
            await service.access.flush()
            await notifier.drain()


async def _agent_url(session: PodSession, config: Config) -> str:
    """The agent's public URL as vendors know it: the one the WebID profile advertises (the
    running agent puts it there), else the configured one. Messages name offers by it, and a
    vendor's inbox takes only messages about its agent's offers."""
    from rdflib import URIRef

    from vrm_agent.errors import PodError
    from vrm_agent.vocabulary import VRM

    daemon = config.settings.get("daemon", {})
    configured = daemon.get("public_url") or (
        f"http://{daemon.get('host', DEFAULT_HOST)}:{daemon.get('port', DEFAULT_PORT)}/")
    try:
        profile = await session.pod.get_graph(session.webid.split("#", 1)[0])
    except PodError:
        return str(configured)
    advertised = sorted(str(a) for a in profile.graph.objects(URIRef(session.webid), VRM.agent))
    return advertised[0] if len(advertised) == 1 else str(configured)


async def _vendor_webids(service: IntentService, keys: list[str]) -> list[str]:
    """Each ``--vendor`` as a WebID: a vendor of the ledger (id, name, WebID or web site) with
    a WebID on record, or a WebID given in full."""
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.vendors import match_vendor

    vendors = await service.ledger.list(Vendor)
    found = []
    for key in keys:
        vendor = match_vendor(vendors, key)
        if vendor is None:
            if key.startswith(("https://", "http://")):
                from vrm_agent.ledger.records import check_web_iri

                found.append(check_web_iri(key, "the vendor's WebID") or key)
                continue
            raise VrmAgentError(f"no vendor {key!r} in your ledger; name it by id, name or "
                                "WebID (`vrm-agent vendors` lists them)")
        if not vendor.webid:
            raise VrmAgentError(f"{vendor.name} has no WebID in your ledger, so the pod cannot "
                                f"let it read; add one with `vrm-agent vendors set {vendor.id} "
                                "--webid W`")
        found.append(vendor.webid)
    return found


async def cmd_intent_add(args: argparse.Namespace, config: Config) -> int:
    import uuid

    from vrm_agent.daemon.intents import intent_row
    from vrm_agent.ledger.intents import Intent

    async with open_intents(config) as (service, _):
        intent = Intent(args.id or uuid.uuid4().hex[:12], args.what, args.budget,
                        args.currency, await service.terms_iri(args.terms), args.where,
                        args.valid_from, args.valid_until)
        webids = await _vendor_webids(service, args.vendor or [])
        audience = await service.add(intent, public=args.public, vendors=webids)
        saved, audience = await service.get(intent.id)
    record = intent_row(saved, audience, service)
    who = "everyone" if audience.public else ", ".join(audience.vendors)
    done(f"Intent {saved.id} is out: {saved.what}, at most {saved.max_price} {saved.currency}. "
         f"Who may read it: {who}. Offers: `vrm-agent intent offers {saved.id}`.",
         record, as_json=args.json)
    return 0


async def cmd_intent_list(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.intents import intent_row

    async with open_intents(config) as (service, _):
        pairs = await service.all()
        rows = [intent_row(i, a, service) for i, a in pairs if args.all or a.is_open]
    if args.json:
        show_table(rows, (), as_json=True)
        return 0
    show_table([{**r, "budget": f"{r['budget']} {r['currency']}",
                 "visible to": r["visible_to"] if isinstance(r["visible_to"], str)
                 else ", ".join(r["visible_to"])} for r in rows],
               ("id", "what", "where", "budget", "visible to", "state"), as_json=False)
    return 0


async def cmd_intent_show(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.intents import intent_row

    async with open_intents(config) as (service, _):
        intent, audience = await service.get(args.id)
        record = intent_row(intent, audience, service)
        record["offers"] = len(await service.offers(args.id))
    show(record, as_json=args.json)
    return 0


async def cmd_intent_close(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.daemon.intents import intent_row

    async with open_intents(config) as (service, _):
        await service.close(args.id)
        intent, audience = await service.get(args.id)
    failed = service.notifier.failed  # after the deliveries were made or given up
    told = ("the vendors that offered have been told" if not failed else
            f"{failed} vendor(s) could not be told (their callback did not take the message)")
    done(f"Closed intent {args.id}: no vendor reads it or offers to it any more; {told}.",
         {**intent_row(intent, audience, service), "vendors_not_told": failed},
         as_json=args.json)
    return 0


async def cmd_intent_offers(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.cli.session import vendor_names
    from vrm_agent.daemon.intents import comparison, offer_row

    async with open_intents(config) as (service, session):
        await service.get(args.id)
        offers = comparison(await service.offers(args.id))
        names = await vendor_names(session.pod, session.storage) if offers else {}
    rows = [offer_row(o, names) for o in offers]
    if args.json:
        show_table(rows, (), as_json=True)
        return 0
    show_table([{**r, "price": f"{r['price']} {r['currency']}",
                 "availability": " ".join(str(v) for v in (r["availability"], r["from"]) if v)}
                for r in rows], ("id", "vendor", "price", "availability", "received"),
               as_json=False)
    if rows:
        print(f"Accept one with 'vrm-agent intent accept {args.id} OFFER'.")
    return 0


async def cmd_intent_accept(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.ledger.records import Vendor

    async with open_intents(config) as (service, _):
        accepted = await service.accept(args.id, args.offer)
        vendor = await service.ledger.get(Vendor, accepted.vendor_id)
    failed = service.notifier.failed  # after the deliveries were made or given up
    told = ("the vendors that offered have been told" if not failed else
            f"{failed} vendor(s) could not be told (their callback did not take the message)")
    from vrm_agent.negotiation.intent_wire import money

    done(f"Accepted {vendor.name}'s offer of {money(accepted.offer.price)} "
         f"{accepted.offer.currency} "
         f"for {accepted.intent.what}: you are its customer, under your terms "
         f"({accepted.intent.terms}); agreement {accepted.agreement_url}. The intent is "
         f"closed; {told}.",
         {"intent": accepted.intent.id, "offer": accepted.offer.id, "vendor": vendor.id,
          "vendor_name": vendor.name, "vendor_webid": accepted.offer.seller,
          "relationship": "customer", "agreement": accepted.agreement_url,
          "vendors_not_told": failed}, as_json=args.json)
    return 0


async def cmd_vendor_offer(args: argparse.Namespace, config: Config) -> int:
    """An example vendor answering an intent: it finds the person's agent, lists the intents it
    may see, reads one from the pod with its own token, offers on its terms, and waits to hear
    whether the offer was accepted."""
    import asyncio

    from vrm_agent.cli.output import info
    from vrm_agent.cli.vendor_commands import _demo_vendor
    from vrm_agent.errors import ConfigError
    from vrm_agent.pod.client import PodClient
    from vrm_agent.vendor import Inbox, IntentClient, VendorAgent

    if args.vendor_config:
        from pathlib import Path

        credentials = Config.load(Path(args.vendor_config).expanduser()).credentials()
    else:
        credentials = await _demo_vendor(config)
    person = args.person or config.webid
    if not person:
        raise ConfigError("whose intents? pass --person WEBID (or log in as the person first)")
    async with PodClient(credentials) as pod, Inbox() as inbox:
        vendor = VendorAgent(pod, inbox=inbox)
        intents = IntentClient(vendor)
        agent = await vendor.discover(person)
        chosen = []
        for _ in range(4):  # the agent's listing may lag a new intent by up to 2 s
            entries = await intents.list(agent)
            chosen = [e for e in entries if args.intent in (None, e.id.rsplit("/", 1)[-1])]
            if chosen:
                break
            await asyncio.sleep(1)
        if not chosen:
            raise VrmAgentError(f"{person}'s agent shows this vendor no open intent"
                                + (f" {args.intent!r}" if args.intent else "")
                                + "; put one out with 'vrm-agent intent add ... --public'")
        entry = chosen[-1]
        wanted = await intents.read(entry)
        info(f"vendor: read {entry.intent}: {wanted.what}, at most {wanted.max_price} "
             f"{wanted.currency}, on the terms {wanted.terms}")
        view = await intents.offer(entry, price=args.price, currency=args.currency or
                                   wanted.currency, terms=wanted.terms,
                                   availability=f"schema:{args.availability}",
                                   description=args.description)
        info(f"vendor: offered {view['price']} {view['priceCurrency']}; waiting up to "
             f"{args.wait:g} s for the person ('vrm-agent intent offers "
             f"{entry.id.rsplit('/', 1)[-1]}')")
        outcome = "not heard"
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            heard = await inbox.wait_for(lambda n: n.negotiation == view["id"],
                                         timeout=args.wait)
            outcome = "accepted" if heard.type == "OfferAcceptedMessage" else "declined"
    done(f"Offer {view['id']}: {outcome}.", {**view, "outcome": outcome}, as_json=args.json)
    return 0 if outcome != "not heard" else 3


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    intent = commands.add_parser(
        "intent", parents=[common], help="what you want, for vendors to answer with offers",
        description="Intentcasting: say what you want, where, when and for how much, on your "
        "terms; the vendors you choose (or everyone) read it from your pod and answer with "
        "offers through your agent.")
    intent.add_argument("--all", action="store_true", help="closed intents too")
    intent.set_defaults(handler=cmd_intent_list)
    sub = intent.add_subparsers(dest="intent_command", metavar="COMMAND")
    add = sub.add_parser("add", parents=[common], help="put out an intent",
                         description="Record what you want and let the vendors you name (or "
                         "everyone, with --public) read it; the pod enforces who may.")
    add.add_argument("what", help="what you want, in a line")
    add.add_argument("--budget", type=budget, required=True, metavar="AMOUNT",
                     help="the most you will pay, like 1200 or 1200.50")
    add.add_argument("--currency", type=currency_code, required=True,
                     help="the budget's currency (ISO 4217, like EUR)")
    add.add_argument("--where", help="where (a place name)")
    add.add_argument("--from", dest="valid_from", type=iso_date, metavar="DATE",
                     help="wanted from this day (YYYY-MM-DD)")
    add.add_argument("--until", dest="valid_until", type=iso_date, metavar="DATE",
                     help="wanted until this day; vendors read it until then (else 90 days)")
    add.add_argument("--terms", metavar="NAME",
                     help="the terms a vendor must accept to offer (default: sd-base)")
    add.add_argument("--id", help="its id (default: made up)")
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--public", action="store_true", help="anyone may read it")
    who.add_argument("--vendor", action="append", metavar="VENDOR",
                     help="a vendor that may read it (id, name or WebID; repeat for more)")
    add.set_defaults(handler=cmd_intent_add)
    listing = sub.add_parser("list", parents=[common], help="your intents")
    listing.add_argument("--all", action="store_true", help="closed intents too")
    listing.set_defaults(handler=cmd_intent_list)
    show_one = sub.add_parser("show", parents=[common], help="one intent")
    show_one.add_argument("id")
    show_one.set_defaults(handler=cmd_intent_show)
    close = sub.add_parser("close", parents=[common],
                           help="close an intent: vendors no longer read it or offer")
    close.add_argument("id")
    close.set_defaults(handler=cmd_intent_close)
    offers = sub.add_parser("offers", parents=[common],
                            help="the offers to an intent, cheapest first")
    offers.add_argument("id")
    offers.set_defaults(handler=cmd_intent_offers)
    accept = sub.add_parser(
        "accept", parents=[common], help="accept an offer: become the vendor's customer",
        description="Accept one offer: the vendor goes into your ledger as one you are a "
        "customer of, an agreement under your terms is signed, the vendor is told, and the "
        "intent closes (the other vendors are told).")
    accept.add_argument("id")
    accept.add_argument("offer")
    accept.set_defaults(handler=cmd_intent_accept)

    offer = commands.add_parser(
        "vendor-offer", parents=[common], help="run an example vendor that answers an intent",
        description="An example vendor: finds the person's agent from their WebID, reads an "
        "intent it may see from the pod, offers a price on the intent's terms, and waits to "
        "hear whether the person accepted. Without --vendor-config it uses the demo vendor "
        "account on the embedded pod server.")
    offer.add_argument("price", type=budget, help="the price offered, like 950 or 949.90")
    offer.add_argument("--currency", type=currency_code,
                       help="the price's currency (default: the intent's)")
    offer.add_argument("--intent", metavar="ID", help="which intent (default: the newest)")
    offer.add_argument("--availability", default="InStock",
                       choices=("InStock", "PreOrder", "BackOrder", "LimitedAvailability"),
                       help="schema.org availability (default InStock)")
    offer.add_argument("--description", help="a line about the offer")
    offer.add_argument("--person", metavar="WEBID", type=http_iri,
                       help="the person (default: this config's)")
    offer.add_argument("--vendor-config", metavar="PATH",
                       help="a config file with the vendor's own credentials")
    offer.add_argument("--wait", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for the person (default 300)")
    offer.set_defaults(handler=cmd_vendor_offer)
