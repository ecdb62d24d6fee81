"""Intentcasting: the person's intents, who may see them, the offers vendors make, and the
accepted offer that starts a relationship (docs/protocol.md §17, docs/pod-layout.md).

The daemon answers vendors with this service (list what they may see, take offers, show each
vendor its own offer); the command line uses it for the person's side (add, close, compare,
accept). Who may read an intent is the pod's decision alone: a public intent has a public-read
rule on its one document, a private one a read grant per named vendor, and closing takes them
away before anyone is told. Offers are kept in the person's pod where no vendor reads them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from vrm_agent.access.model import AccessMode
from vrm_agent.access.service import AccessControl, GrantNotFound
from vrm_agent.daemon.negotiations import NegotiationError, StepNotAllowed
from vrm_agent.errors import NotFound, PodError, PreconditionFailed, VrmAgentError
from vrm_agent.integrity import SigningKey, add_proof
from vrm_agent.ledger.audit import AuditEvent, AuditLog, AuditWriter
from vrm_agent.ledger.intents import (
    Intent,
    IntentAudience,
    IntentOffer,
    RecordError,
    intent_url,
    offer_url,
    offers_container,
)
from vrm_agent.ledger.records import Relationship, check_record_id
from vrm_agent.ledger.store import Ledger, RecordExists, RecordNotFound, read_members
from vrm_agent.ledger.terms import TermsError, TermsStore
from vrm_agent.ledger.vendors import vendor_for_agent
from vrm_agent.negotiation.intent_wire import (
    OfferInput,
    OfferRefused,
    accepted_message,
    closed_message,
    money,
    offer_view,
    read_offer,
)
from vrm_agent.negotiation.odrl import Constraint, Policy, Rule
from vrm_agent.negotiation.records import agreement_document, agreement_record_graph
from vrm_agent.negotiation.wire import PREFIXES
from vrm_agent.pod.client import PodClient

log = logging.getLogger("vrm_agent.daemon.intents")
DEFAULT_TERMS = "sd-base"  # the roster's service-delivery terms: use for delivery, then delete
MAX_OPEN_INTENTS = 50
MAX_OFFERS_PER_VENDOR = 3  # per intent: a vendor may revise, not flood
MAX_OFFERS_PER_INTENT = 200
VISIBLE_FOR = timedelta(days=90)  # how long an intent stays visible when it names no end
AGREEMENT_RUNS = timedelta(days=365)
# How long the daemon answers listings from the audiences it read last: a change made by a
# command shows in the listing within this time; reads from the pod and offers are checked
# afresh every time, so this decides nothing.
LISTING_FRESH_SECONDS = 2.0
ENDED_CHECK_SECONDS = 600.0  # intents end on whole days: a look every ten minutes is enough
SERVICE_PROVISION = "https://w3id.org/dpv#ServiceProvision"


class IntentError(NegotiationError):
    status = 400
    slug = "bad-offer"
    title = "The offer is refused"


class UnknownIntent(IntentError):
    status = 404
    slug = "unknown-intent"
    title = "Unknown intent"


class IntentClosed(StepNotAllowed):
    slug = "intent-closed"
    title = "The intent is closed"


class UnknownOffer(IntentError):
    status = 404
    slug = "unknown-offer"
    title = "Unknown offer"


class TooManyOffers(IntentError):
    status = 409
    slug = "too-many-offers"
    title = "Too many offers"


@dataclass(frozen=True)
class Accepted:
    """What accepting an offer did."""

    intent: Intent
    offer: IntentOffer
    vendor_id: str
    agreement_url: str
    agreement: dict[str, Any]
    told: int  # vendors told (the winner included), when their callbacks took the message


def seller_tag(webid: str) -> str:
    """The first part of an offer's id: the same for all offers of one vendor, so the offers it
    has made are counted from the container listing alone."""
    return hashlib.sha256(webid.encode()).hexdigest()[:10]


def has_ended(intent: Intent, today: date) -> bool:
    """Whether the intent's last wanted day (``--until``) is behind us."""
    return intent.ends is not None and intent.ends < today


def comparison(offers: Sequence[IntentOffer]) -> list[IntentOffer]:
    """Offers as the person compares them: cheapest first (within a currency), then earliest."""
    return sorted(offers, key=lambda o: (o.currency, o.price, o.created))


def accepted_offer_id(audience: IntentAudience) -> str | None:
    """The id of the offer the intent was closed with, None when none was accepted."""
    if not audience.accepted_offer:
        return None
    return audience.accepted_offer.rsplit("/", 1)[-1].removesuffix("#it")


def intent_row(intent: Intent, audience: IntentAudience, service: IntentService
               ) -> dict[str, Any]:
    """One intent as the person's side shows it (the command line and the dashboard)."""
    return {
        "id": intent.id, "what": intent.what, "where": intent.where,
        "from": intent.starts, "until": intent.ends,
        "budget": money(intent.max_price), "currency": intent.currency, "terms": intent.terms,
        "visible_to": "everyone" if audience.public else list(audience.vendors),
        "state": "open" if audience.is_open else "closed",
        "created": intent.created, "closed": audience.closed,
        "accepted_offer": accepted_offer_id(audience),
        "resource": service.document(intent.id),
        "offers_endpoint": service.offers_endpoint(intent.id),
    }


def offer_row(offer: IntentOffer, names: Mapping[str, str]) -> dict[str, Any]:
    """One offer as the person compares it; the vendor by its name in the ledger, else its
    WebID (never by what the vendor says of itself)."""
    return {"id": offer.id, "vendor": names.get(offer.seller, offer.seller),
            "vendor_webid": offer.seller, "price": money(offer.price),
            "currency": offer.currency,
            "availability": offer.availability.rsplit("/", 1)[-1] if offer.availability
            else None, "from": offer.starts, "received": offer.created,
            "description": offer.description}


class IntentService:
    def __init__(self, pod: PodClient, *, owner: str, storage: str, agent_url: str,
                 signing_key: SigningKey, access: AccessControl, notifier: Any,
                 audit: AuditWriter | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.pod, self.owner = pod, owner
        self.ledger = Ledger(pod, storage)
        self.layout = self.ledger.layout
        self.agent_url = agent_url.rstrip("/") + "/"
        self.key, self.access, self.notifier = signing_key, access, notifier
        self.audit = audit or AuditWriter(AuditLog(pod, self.layout))
        self.clock = clock or (lambda: datetime.now(UTC))
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()
        self._closed: dict[str, IntentAudience] = {}  # closing is final: never read again
        self._listed: tuple[float, list[IntentAudience]] | None = None

    @classmethod
    def beside(cls, negotiations: Any) -> IntentService:
        """The service on the same pod, key, access control, notifier and audit log as the
        negotiation service (one daemon, one of each)."""
        return cls(negotiations.pod, owner=negotiations.owner,
                   storage=negotiations.layout.storage, agent_url=negotiations.agent_url,
                   signing_key=negotiations.key, access=negotiations.access,
                   notifier=negotiations.notifier, audit=negotiations.audit,
                   clock=negotiations.clock)

    # -- where things are --------------------------------------------------------------------

    def listing_url(self) -> str:
        return self.agent_url + "intents"

    def agent_intent_url(self, intent_id: str) -> str:
        return f"{self.agent_url}intents/{intent_id}"

    def offers_endpoint(self, intent_id: str) -> str:
        return self.agent_intent_url(intent_id) + "/offers"

    def agent_offer_url(self, intent_id: str, offer_id: str) -> str:
        return f"{self.offers_endpoint(intent_id)}/{offer_id}"

    def document(self, intent_id: str) -> str:
        return intent_url(self.layout, intent_id)

    def _lock(self, intent_id: str) -> asyncio.Lock:
        lock = self._locks.get(intent_id)
        if lock is None:
            lock = self._locks[intent_id] = asyncio.Lock()
        return lock

    # -- reading -----------------------------------------------------------------------------

    async def get(self, intent_id: str) -> tuple[Intent, IntentAudience]:
        try:
            check_record_id(intent_id, "intent")
            intent, audience = await asyncio.gather(self.ledger.get(Intent, intent_id),
                                                    self.ledger.get(IntentAudience, intent_id))
        except (RecordNotFound, RecordError):
            raise UnknownIntent(f"no intent {intent_id[:40]!r} (`vrm-agent intent list` "
                                "lists them)") from None
        return intent, audience

    async def all(self) -> list[tuple[Intent, IntentAudience]]:
        intents, audiences = await asyncio.gather(self.ledger.list(Intent),
                                                  self.ledger.list(IntentAudience))
        by_id = {a.id: a for a in audiences}
        pairs = [(i, by_id[i.id]) for i in intents if i.id in by_id]
        return sorted(pairs, key=lambda p: (p[0].created or datetime.min.replace(tzinfo=UTC),
                                            p[0].id))

    async def offers(self, intent_id: str) -> list[IntentOffer]:
        """Every offer kept for the intent, read side by side; one that cannot be read is
        skipped (logged). The agent keeps at most MAX_OFFERS_PER_INTENT, so more members were
        put there by another app: only that many are read, and the rest is logged."""
        container = offers_container(self.layout, intent_id)
        try:
            members = await self.pod.list_container(container)
        except NotFound:
            return []
        urls = sorted(m for m in members if m.startswith(container) and m != container)
        if len(urls) > MAX_OFFERS_PER_INTENT:
            log.warning("more offers than the agent keeps; the rest are not read",
                        extra={"intent": intent_id, "members": len(urls)})
            urls = urls[:MAX_OFFERS_PER_INTENT]

        async def read(url: str) -> IntentOffer:
            return IntentOffer.from_graph((await self.pod.get_graph(url)).graph, url,
                                          self.layout)

        good, _ = await read_members(urls, read, what="offer", reported=self.ledger.reported)
        return [offer for _, offer in good]

    async def audiences(self) -> list[IntentAudience]:
        """Every intent's audience: closed ones from memory, open ones read again when the last
        reading is older than LISTING_FRESH_SECONDS. Members that are no audience are skipped."""
        now = time.monotonic()
        if self._listed is not None and now - self._listed[0] < LISTING_FRESH_SECONDS:
            return self._listed[1]
        ids = await self.ledger.ids(IntentAudience)
        urls = [self.ledger.url_of(IntentAudience, i) for i in sorted(ids - self._closed.keys())]

        async def read(url: str) -> IntentAudience:
            return await self.ledger.get(IntentAudience, url.rsplit("/", 1)[-1])

        good, _ = await read_members(urls, read, what="intent audience",
                                     reported=self.ledger.reported)
        found = [a for _, a in good]
        read_now = {a.id for a in found}
        # Only intents still in the pod are remembered: one deleted there is forgotten here.
        self._closed = {i: a for i, a in self._closed.items() if i in ids}
        self._closed.update((a.id, a) for a in found if not a.is_open)
        found += [a for i, a in self._closed.items() if i not in read_now]
        self._listed = (now, found)
        return found

    async def visible_to(self, webid: str) -> list[tuple[str, str, str]]:
        """The open intents the vendor may see: (id at the agent, pod document, offers)."""
        audiences = await self.audiences()
        return [(self.agent_intent_url(a.id), self.document(a.id), self.offers_endpoint(a.id))
                for a in sorted(audiences, key=lambda a: a.id) if a.sees(webid)]

    # -- the person's side -------------------------------------------------------------------

    async def terms_iri(self, name: str | None) -> str:
        """The IRI of the person's terms called ``name`` (the default: the roster's sd-base);
        terms that do not exist or do not validate are refused."""
        store = TermsStore(self.ledger, self.owner)
        slug = name or DEFAULT_TERMS
        url = store.url_of(slug)
        found = await store.all()  # a new pod gets the starter roster first
        if slug not in found:
            raise TermsError(f"there are no terms named {slug!r} (`vrm-agent terms` lists "
                             "yours)")
        if slug in store.invalid:
            raise TermsError(f"your terms {slug!r} do not validate; fix them first "
                             "(`vrm-agent terms` says why)")
        return url + "#it"

    async def add(self, intent: Intent, *, public: bool, vendors: Sequence[str]) -> IntentAudience:
        """Record the intent and make it visible as the person chose: public read on its one
        document, or a read grant to each named vendor until the intent's end."""
        if public == bool(vendors):
            raise IntentError("choose who may see the intent: --public, or --vendor for each "
                              "vendor (not both)")
        open_now = [a for _, a in await self.all() if a.is_open]
        if len(open_now) >= MAX_OPEN_INTENTS:
            raise IntentError(f"you have {len(open_now)} open intents, the most the agent "
                              "keeps; close some first (`vrm-agent intent close ID`)")
        now = self.clock()
        until = (datetime.combine(intent.ends + timedelta(days=1), datetime.min.time(), UTC)
                 if intent.ends else now + VISIBLE_FOR)
        if until <= now:
            raise IntentError("the intent ends in the past; give an --until that is to come")
        intent = replace(intent, created=intent.created or now.replace(microsecond=0))
        audience = IntentAudience(intent.id, public=public, vendors=tuple(sorted(set(vendors))))
        # Both built first: a bad value fails here, before anything is written.
        intent.to_graph(self.layout)
        audience.to_graph(self.layout)
        url = self.document(intent.id)
        try:
            await self.ledger.create(intent)
        except RecordExists:
            raise IntentError(f"an intent {intent.id} exists; choose another --id") from None
        await self.ledger.save(audience)  # who may see it is on record before anyone can
        self._listed = None
        grants: list[str] = []
        try:
            if public:
                await self.access.publish_intent(url)
            else:
                for webid in audience.vendors:
                    view = await self.access.grant(webid, [url], [AccessMode.READ],
                                                   until=until, now=now)
                    grants.append(view.id)
                    audience = replace(audience, grants=tuple(grants))
                    await self.ledger.save(audience)
        except (PodError, VrmAgentError):
            # Whole or not at all: an intent half visible is taken back, then the failure told.
            with contextlib.suppress(PodError, VrmAgentError):
                if public:
                    await self.access.unpublish_intent(url)
                for grant in grants:
                    with contextlib.suppress(GrantNotFound):
                        await self.access.revoke(grant)
                await self.ledger.delete(IntentAudience, intent.id)
                await self.ledger.delete(Intent, intent.id)
            self._listed = None
            raise
        self.audit.add(AuditEvent("IntentSent", at=now, actor=self.owner, resources=[url],
                                  description=f"intent {intent.id}: {intent.what} "
                                  f"({'public' if public else ', '.join(audience.vendors)})"))
        return audience

    async def close(self, intent_id: str, *, reason: str = "the person closed the intent",
                    accepted: IntentOffer | None = None,
                    agreement: dict[str, Any] | None = None) -> IntentAudience:
        """Close the intent: closed on record first (no offer is taken from then on), then its
        visibility removed, then the vendors that offered are told."""
        async with self._lock(intent_id):
            _, audience = await self.get(intent_id)
            if not audience.is_open:
                raise IntentClosed(f"intent {intent_id} is closed already")
            now = self.clock().replace(microsecond=0)
            winner = offer_url(self.layout, intent_id, accepted.id) + "#it" if accepted else None
            audience = replace(audience, closed=now, accepted_offer=winner)
            await self.ledger.save(audience)
            self._listed = None
        url = self.document(intent_id)
        if audience.public:
            await self.access.unpublish_intent(url)
        for grant in audience.grants:
            with contextlib.suppress(GrantNotFound):
                await self.access.revoke(grant)
        self.audit.add(AuditEvent("DataChanged", at=now, actor=self.owner, resources=[url],
                                  description=f"intent {intent_id} closed: {reason}"))
        for offer in await self.offers(intent_id):
            where = self.agent_offer_url(intent_id, offer.id)
            if accepted is not None and offer.id == accepted.id:
                assert agreement is not None
                self.notifier.send(offer.callback, accepted_message(
                    intent=url, offer=where, agreement=agreement))
            else:
                self.notifier.send(offer.callback, closed_message(
                    intent=url, offer=where, reason=reason))
        return audience

    async def accept(self, intent_id: str, offer_id: str) -> Accepted:
        """Take one offer: the vendor on record (as its WebID names it, never as it names
        itself), the relationship a customer one the person started, an agreement under the
        intent's terms signed by the agent; then the intent closes and every vendor that
        offered is told."""
        intent, audience = await self.get(intent_id)
        if not audience.is_open:
            raise IntentClosed(f"intent {intent_id} is closed already")
        offer = await self._offer(intent_id, offer_id)
        now = self.clock().replace(microsecond=0)
        vendor_id = await vendor_for_agent(self.ledger, offer.seller, since=now.date())
        agreement_id = f"intent-{intent_id}"
        record_url = self.layout.resource("agreements", agreement_id)
        where = self.agent_offer_url(intent_id, offer.id)
        policy = Policy(record_url + "#agreement", "Agreement", (
            Rule("permission", "use", (self.document(intent_id),),
                 (Constraint("purpose", "eq", SERVICE_PROVISION),)),),
            assigner=self.owner, assignee=offer.seller,
            title=f"{intent.what}: {offer.price} {offer.currency}")
        document = {**agreement_document(policy, ()), "acceptsTerms": intent.terms,
                    "intentOffer": where}
        signed = add_proof(document, self.key, created=now)
        graph = agreement_record_graph(
            record_url, policy, signed, vendor=offer.seller, state="Agreed", valid_from=now,
            valid_through=now + AGREEMENT_RUNS, terms=[intent.terms],
            relationship=self.ledger.url_of(Relationship, vendor_id) + "#it")
        # The agreement record is the claim: of two accepts at once (two commands), only the
        # one that creates it goes on, so only its vendor becomes a customer.
        try:
            await self.ledger.write_graph(record_url, graph, if_none_match="*")
        except PreconditionFailed:
            raise IntentClosed(f"intent {intent_id} has an agreement already") from None
        before = self.notifier.delivered
        try:
            await self.close(intent_id, reason="the person accepted another offer",
                             accepted=offer, agreement=signed)
        except IntentClosed:
            # Closed meanwhile by `intent close`: no offer was accepted, so no agreement stays.
            with contextlib.suppress(NotFound):
                await self.pod.delete(record_url)
            raise
        def as_customer(found: Relationship | None) -> Relationship:
            relationship = found or Relationship(vendor_id)
            return replace(relationship, state="customer", initiated_by=self.owner,
                           since=relationship.since or date.today())

        # Conditional on the record as read: a signal or vendor state set meanwhile is kept.
        await self.ledger.change(Relationship, vendor_id, as_customer)
        self.audit.add(AuditEvent("RelationshipChanged", at=now, actor=self.owner,
                                  vendor=offer.seller, agreement=record_url,
                                  description=f"customer of {vendor_id} by intent {intent_id}"))
        self.audit.add(AuditEvent("AgreementReached", at=now, actor=self.owner,
                                  vendor=offer.seller, agreement=record_url,
                                  description=f"offer {offer.id} to intent {intent_id}"))
        return Accepted(intent, offer, vendor_id, record_url, signed,
                        self.notifier.delivered - before)

    async def _offer(self, intent_id: str, offer_id: str) -> IntentOffer:
        try:
            url = offer_url(self.layout, intent_id, offer_id)
            graph = (await self.pod.get_graph(url)).graph
            return IntentOffer.from_graph(graph, url, self.layout)
        except (RecordError, NotFound, ValueError, ArithmeticError):
            raise UnknownOffer(f"no offer {offer_id[:40]!r} to intent {intent_id[:40]!r}") \
                from None

    # -- the vendor's side -------------------------------------------------------------------

    async def _visible(self, intent_id: str, webid: str) -> tuple[Intent, IntentAudience]:
        """The intent if the vendor may see it; 404 when it may not (or there is none), so
        nobody learns of intents not meant for them; 409 when it could but it is closed."""
        try:
            intent, audience = await self.get(intent_id)
        except UnknownIntent:
            raise UnknownIntent(f"no intent {intent_id[:40]!r} for you") from None
        if not (audience.public or webid in audience.vendors):
            raise UnknownIntent(f"no intent {intent_id[:40]!r} for you")
        if not audience.is_open:
            raise IntentClosed(f"intent {intent_id} is closed; it takes no more offers")
        return intent, audience

    async def receive_offer(self, intent_id: str, webid: str, body: bytes
                            ) -> tuple[IntentOffer, dict[str, Any]]:
        """Check and keep a vendor's offer; nothing is written unless all of it is acceptable."""
        intent, _ = await self._visible(intent_id, webid)
        if has_ended(intent, self.clock().date()):
            raise IntentClosed(f"intent {intent_id} ended on {intent.ends}; it takes no more "
                               "offers")
        document = self.document(intent_id)
        try:
            offered = read_offer(body, intent=document, terms=intent.terms, prefixes=PREFIXES)
        except OfferRefused as exc:
            error = IntentError(str(exc))
            error.slug = exc.slug
            raise error from None
        callback = self.notifier.accept_callback(offered.callback)
        async with self._lock(intent_id):
            _, audience = await self._visible(intent_id, webid)  # closed meanwhile?
            container = offers_container(self.layout, intent_id)
            try:
                members = await self.pod.list_container(container)
            except NotFound:
                members = []
            ids = [m[len(container):] for m in members if m.startswith(container)
                   and m != container]
            tag = seller_tag(webid)
            if sum(1 for i in ids if i.startswith(tag + "-")) >= MAX_OFFERS_PER_VENDOR:
                raise TooManyOffers(f"you have made {MAX_OFFERS_PER_VENDOR} offers to this "
                                    "intent, the most it takes from one vendor")
            if len(ids) >= MAX_OFFERS_PER_INTENT:
                raise TooManyOffers("this intent has all the offers it takes")
            now = self.clock().replace(microsecond=0)
            offer = IntentOffer(f"{tag}-{uuid.uuid4().hex[:8]}", intent_id, webid,
                                offered.price, offered.currency, offered.accepts_terms, now,
                                offered.availability, offered.starts, offered.description,
                                callback)
            url = offer_url(self.layout, intent_id, offer.id)
            await self.ledger.write_graph(url, offer.to_graph(self.layout), if_none_match="*")
        self.audit.add(AuditEvent("OfferReceived", at=now, actor=webid, vendor=webid,
                                  resources=[url], description=f"offer {offer.id} to intent "
                                  f"{intent_id}: {offer.price} {offer.currency}"))
        return offer, self.view(offer, audience)

    def view(self, offer: IntentOffer, audience: IntentAudience) -> dict[str, Any]:
        winner = offer_url(self.layout, offer.intent_id, offer.id) + "#it"
        state = ("accepted" if audience.accepted_offer == winner else
                 "open" if audience.is_open else "declined")
        return offer_view(
            offer.id, url=self.agent_offer_url(offer.intent_id, offer.id),
            intent=self.document(offer.intent_id), state=state, received=offer.created,
            offer=OfferInput(offer.price, offer.currency, offer.accepts_terms,
                             offer.availability, offer.starts, offer.description,
                             offer.callback))

    async def own_offer(self, intent_id: str, offer_id: str, webid: str) -> dict[str, Any]:
        """The vendor's own offer; any other (another vendor's included) is 404."""
        try:
            _, audience = await self.get(intent_id)
            offer = await self._offer(intent_id, offer_id)
        except UnknownIntent:
            raise UnknownOffer(f"no offer {offer_id[:40]!r} of yours") from None
        if offer.seller != webid:
            raise UnknownOffer(f"no offer {offer_id[:40]!r} of yours")
        return self.view(offer, audience)

    async def close_ended(self) -> list[str]:
        """Close every open intent whose last wanted day has passed (its public read goes,
        and the vendors that offered are told); the ids closed."""
        today = self.clock().date()
        closed = []
        for intent, audience in await self.all():
            if audience.is_open and has_ended(intent, today):
                with contextlib.suppress(IntentClosed):  # closed meanwhile by a command
                    await self.close(intent.id, reason=f"the intent ended on {intent.ends}")
                    closed.append(intent.id)
        return closed

    async def keep_closing_ended(self, every: float = ENDED_CHECK_SECONDS) -> None:
        """The daemon's watch over intents' ends, until cancelled."""
        while True:
            try:
                for intent_id in await self.close_ended():
                    log.info("intent ended and closed", extra={"intent": intent_id})
            except (PodError, VrmAgentError) as exc:
                log.warning("ended intents not closed", extra={"problem": str(exc)[:200]})
            await asyncio.sleep(every)

    async def flush(self) -> None:
        await self.audit.flush()
