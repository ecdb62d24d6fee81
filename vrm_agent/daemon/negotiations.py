"""The negotiation service: the person's side of every negotiation, from request to the end.

The decisions are the pure functions of :mod:`vrm_agent.negotiation` (the terms decide, the state
machine allows or refuses each message); this module does the I/O around them: it keeps each
negotiation in the pod (``vrm/negotiations/<id>``, JSON-LD), turns an agreement into grants
through :class:`~vrm_agent.access.service.AccessControl`, signs it, stores the agreement record
(``vrm/agreements/<id>``, Turtle), appends every step to the audit log, and tells the vendor.

An approved request costs two pod round trips on its critical path: the access-control document
is read and written (one GET, one PUT), while the negotiation and the agreement record are written
beside it; the audit entries are queued and written after the answer. Terms, the category map and
the vendor list come from memory, refreshed in the background (docs/performance.md has figures).

The daemon and the CLI (``requests approve``, ``grants revoke``) both use this service; they meet
only in the pod, where each write of a negotiation is conditional on the version it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import re
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vrm_agent.access.model import AccessMode
from vrm_agent.access.service import (
    INDEX_POLL_SECONDS,
    AccessControl,
    GrantNotFound,
    GrantView,
)
from vrm_agent.errors import NotFound, PodError, PreconditionFailed, VrmAgentError
from vrm_agent.integrity import IntegrityError, SigningKey, add_proof, verify_proofs_async
from vrm_agent.ledger.audit import AuditEvent, AuditLog, AuditWriter
from vrm_agent.ledger.categories import (
    Target,
    belongs_elsewhere,
    build_map,
    held_by,
    map_graph,
    targets_for,
)
from vrm_agent.ledger.records import Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.terms import TermsStore
from vrm_agent.ledger.vendors import vendor_for_agent
from vrm_agent.negotiation.countersign import (
    CountersignatureRefused,
    countersignature_of,
)
from vrm_agent.negotiation.countersign import countersigned as countersigned_by
from vrm_agent.negotiation.decide import (
    DEFAULT_DURATION,
    Decision,
    Outcome,
    agreement_for,
    decide,
    offer_for,
    without_targets,
)
from vrm_agent.negotiation.durations import end_of
from vrm_agent.negotiation.lws import AccessRequestRefused, lws_notice, resource_meets
from vrm_agent.negotiation.lws import from_stored as lws_from_stored
from vrm_agent.negotiation.odrl import PD, USE_INCLUDES, Ask, Policy, asks_of
from vrm_agent.negotiation.protocol import (
    Event,
    Negotiation,
    ProtocolViolation,
    Role,
    State,
    transition,
)
from vrm_agent.negotiation.records import (
    GrantedAccess,
    NegotiationRecord,
    agreement_document,
    agreement_record_graph,
    proofs_of,
)
from vrm_agent.negotiation.targets import (
    ShareableArea,
    TargetRefused,
    shareable_target,
    with_normalised_targets,
)
from vrm_agent.negotiation.wire import (
    PROTOCOL_CONTEXT,
    MalformedMessage,
    Message,
    message_json,
    policy_from_json,
    policy_json,
)
from vrm_agent.pod.client import PodClient
from vrm_agent.policy.model import Policy as TermsPolicy
from vrm_agent.policy.rdf import report_json

log = logging.getLogger("vrm_agent.daemon.negotiations")
JSON_LD = "application/ld+json"
REFRESH_SECONDS = 10.0
IN_FORCE = (State.AGREED, State.VERIFIED, State.FINALIZED)


class NegotiationError(VrmAgentError):
    """A negotiation step that cannot be taken; ``status`` is the HTTP status that says so."""

    status = 400
    slug = "bad-request"
    title = "Bad request"


class UnknownNegotiation(NegotiationError):
    status = 404
    slug = "unknown-negotiation"
    title = "Unknown negotiation"


class StepNotAllowed(NegotiationError):
    status = 409
    slug = "not-allowed-in-state"
    title = "Not allowed in this state"


class AgreementMismatch(NegotiationError):
    status = 400
    slug = "agreement-mismatch"
    title = "The agreement does not match"


class EnforcementFailed(NegotiationError):
    status = 503
    slug = "enforcement-failed"
    title = "The agreement could not be put in force"


@dataclass(frozen=True)
class PendingRequest:
    """A request waiting for the person, as the CLI lists it."""

    id: str
    vendor: str
    received: datetime
    asks: tuple[Ask, ...]
    consideration: str | None
    trace: tuple[str, ...]
    resources: Mapping[str, tuple[str, ...]]  # per asked target, what approving would share


NEGOTIATION_ID = re.compile(r"[0-9a-f]{16}")


def _short_id() -> str:
    return uuid.uuid4().hex[:16]


class NegotiationService:
    def __init__(
        self,
        pod: PodClient,
        *,
        owner: str,
        storage: str,
        agent_url: str,
        signing_key: SigningKey,
        access: AccessControl,
        notifier: Any,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.pod = pod
        self.owner = owner
        self.ledger = Ledger(pod, storage)
        self.layout = self.ledger.layout
        self.agent_url = agent_url.rstrip("/") + "/"
        self.key = signing_key
        self.access = access
        self.notifier = notifier
        self.clock = clock or (lambda: datetime.now(UTC))
        self.terms = TermsStore(self.ledger, owner)
        self.audit = AuditWriter(AuditLog(pod, self.layout))
        self._terms: list[TermsPolicy] | None = None
        self._unreadable: list[str] = []  # terms that do not validate: the person decides
        self._map: dict[str, list[str]] | None = None
        self._vendor_ids: dict[str, str] = {}
        self._owners: dict[str, str] = {}  # a vendor's own records -> its id (held_by)
        self._refreshed = 0.0
        # Held only while in use: ids a vendor makes up must not pile up here.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()
        self.area = ShareableArea(self.layout.storage, self.layout.root)
        self._vendor_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()
        self._link_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()
        access.handled_elsewhere = self._carries_agreement  # their audit and expiry are ours

    # -- where things are --------------------------------------------------------------------

    def negotiation_url(self, negotiation_id: str) -> str:
        return f"{self.agent_url}negotiations/{negotiation_id}"

    def record_url(self, negotiation_id: str) -> str:
        return self.layout.resource("negotiations", negotiation_id)

    def agreement_url(self, negotiation_id: str) -> str:
        return self.layout.resource("agreements", negotiation_id)

    # -- what decisions need, kept in memory -------------------------------------------------

    async def refresh(self) -> None:
        """Read the terms, the category map and the vendors from the pod again."""
        terms, mapping, vendors, owners = await asyncio.gather(
            self.terms.all(), build_map(self.ledger), self.ledger.list(Vendor),
            held_by(self.ledger))
        if mapping != self._map:
            url = self.layout.resource("categories", "map")
            with contextlib.suppress(PodError):
                await self.ledger.write_graph(url, map_graph(url, mapping))
        self._terms, self._map = list(terms.values()), mapping
        self._unreadable = sorted(self.terms.invalid)
        self._refreshed = time.monotonic()
        self._vendor_ids = {v.webid: v.id for v in vendors if v.webid}
        self._owners = owners

    async def keep_fresh(self, every: float = REFRESH_SECONDS) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.refresh()
            except (PodError, VrmAgentError) as exc:
                log.warning("terms not refreshed", extra={"problem": str(exc)})

    async def vendor_id(self, webid: str) -> str | None:
        """The ledger's id for the vendor whose agent is ``webid`` (None: not a vendor the
        ledger knows); the ledger is read again when the last refresh does not know it."""
        if webid not in self._vendor_ids and time.monotonic() - self._refreshed > 1.0:
            await self.refresh()
        return self._vendor_ids.get(webid)

    def shareable_resources(self) -> list[str]:
        """The resources the category map places the person's data in: what agreements grant
        (the daemon locates them at start, so a first grant costs no more than any other)."""
        return sorted({r for resources in (self._map or {}).values() for r in resources})

    def _categories_of(self) -> dict[str, frozenset[str]]:
        """Each resource the category map names -> the data categories it holds, so a
        request for one resource is judged as a request for its categories."""
        placed: dict[str, set[str]] = {}
        for category, resources in (self._map or {}).items():
            for resource in resources:
                placed.setdefault(resource, set()).add(category)
        return {resource: frozenset(found) for resource, found in placed.items()}

    async def _ready(self) -> list[TermsPolicy]:
        if self._terms is None:
            await self.refresh()
        assert self._terms is not None
        return self._terms

    # -- the pod copy of each negotiation ----------------------------------------------------

    async def load(self, negotiation_id: str) -> NegotiationRecord:
        if not NEGOTIATION_ID.fullmatch(negotiation_id):
            raise UnknownNegotiation(f"no negotiation {negotiation_id!r}")
        try:
            response = await self.pod.get(self.record_url(negotiation_id), accept=JSON_LD)
        except NotFound:
            raise UnknownNegotiation(f"no negotiation {negotiation_id}") from None
        except PodError as exc:
            if exc.status is None or exc.status in (401, 403) or (
                    exc.status >= 500 and exc.status != 501):
                raise  # the pod is in trouble, not the record
            response = None  # 406, or 501 from CSS: not a document it can give as JSON-LD
        try:
            if response is None:
                raise MalformedMessage("it is not JSON-LD")
            data = json.loads(response.body)
            if not isinstance(data, dict):
                raise MalformedMessage("it is not a JSON object")
            return NegotiationRecord.from_json(data, record_id=negotiation_id,
                                               etag=response.etag)
        except (ValueError, RecursionError, MalformedMessage) as exc:
            # Someone else wrote it, or it broke: never fatal, and never trusted.
            log.warning("negotiation record unreadable", extra={
                "negotiation": negotiation_id, "problem": str(exc)[:200]})
            raise UnknownNegotiation(f"no readable negotiation {negotiation_id} (its record "
                                     "in the pod cannot be read)") from None

    async def _store(self, record: NegotiationRecord, *, new: bool = False) -> NegotiationRecord:
        response = await self.pod.put(
            self.record_url(record.id), json.dumps(record.to_json()), content_type=JSON_LD,
            if_match=None if new else record.etag, if_none_match="*" if new else None)
        # CSS answers a PUT without an ETag; every later step loads the record again (with its
        # ETag) before it writes, so no HEAD is spent on it here.
        return NegotiationRecord.from_json(record.to_json(), record_id=record.id,
                                           etag=response.etag)

    async def records(self) -> list[NegotiationRecord]:
        try:
            members = await self.pod.list_container(self.layout.container("negotiations"))
        except NotFound:
            return []
        ids = [m.rsplit("/", 1)[-1] for m in members if not m.endswith("/")]
        found = await asyncio.gather(*(self.load(i) for i in ids), return_exceptions=True)
        trouble = next((r for r in found if isinstance(r, BaseException)
                        and not isinstance(r, UnknownNegotiation)), None)
        if trouble is not None:
            raise trouble  # the pod, not a record: listing less would mislead the person
        return sorted((r for r in found if isinstance(r, NegotiationRecord)),
                      key=lambda r: r.created)

    def _lock(self, negotiation_id: str) -> asyncio.Lock:
        lock = self._locks.get(negotiation_id)
        if lock is None:
            lock = self._locks[negotiation_id] = asyncio.Lock()
        return lock

    async def owned(self, negotiation_id: str, vendor: str) -> NegotiationRecord:
        record = await self.load(negotiation_id)
        if record.vendor != vendor:  # another vendor learns nothing, not even that it exists
            raise UnknownNegotiation(f"no negotiation {negotiation_id}")
        return record

    # -- audit -------------------------------------------------------------------------------

    def _audit(self, kind: str, record: NegotiationRecord, *, actor: str | None = None,
               resources: Sequence[str] = (), description: str | None = None,
               at: datetime | None = None) -> None:
        """Queue an audit entry; it is written beside the answer, never in its way."""
        self.audit.add(AuditEvent(kind, at=at or self.clock(), actor=actor, vendor=record.vendor,
                                  agreement=record.url, grant=record.id if resources else None,
                                  resources=resources, description=description))

    async def flush(self) -> None:
        """Wait for the audit entries queued so far (a command does this before it exits)."""
        await self.audit.flush()

    # -- the vendor's messages ---------------------------------------------------------------

    async def request(self, vendor: str, message: Message, *, lws: str | None = None,
                      not_after: datetime | None = None) -> NegotiationRecord:
        """A ContractRequestMessage: a new negotiation, answered from the person's terms.
        ``lws`` and ``not_after``: the request came as an LWS access request (kept as text),
        whose grants end by ``not_after`` whenever they are made."""
        assert message.policy is not None
        callback = self.notifier.accept_callback(message.callback)  # 400 bad-callback
        now = self.clock()
        negotiation_id = _short_id()
        negotiation = transition(Negotiation(negotiation_id, Role.PROVIDER), Event.REQUEST,
                                 sender=Role.CONSUMER)
        record = NegotiationRecord(
            negotiation_id, self.negotiation_url(negotiation_id), vendor, negotiation,
            message.policy, now, now, callback,
            message.consideration or message.policy.consideration, lws=lws, not_after=not_after)
        return await self._answer(record, message.policy, now, new=True)

    async def counter_request(self, negotiation_id: str, vendor: str,
                              message: Message) -> NegotiationRecord:
        """The vendor answers an offer with a request of its own."""
        assert message.policy is not None
        async with self._lock(negotiation_id):
            record = await self.owned(negotiation_id, vendor)
            now = self.clock()
            record = record.with_changes(
                now, negotiation=self._step(record, Event.REQUEST, Role.CONSUMER),
                request=message.policy,
                callback=self.notifier.accept_callback(message.callback) or record.callback,
                consideration=(message.consideration or message.policy.consideration
                               or record.consideration))
            return await self._answer(record, message.policy, now)

    async def _answer(self, record: NegotiationRecord, request: Policy, now: datetime, *,
                      new: bool = False) -> NegotiationRecord:
        terms = await self._ready()
        request = with_normalised_targets(request)
        decision = decide(request, terms, vendor=record.vendor, now=now,
                          part_of=self._categories_of(), unreadable=self._unreadable)
        decision, found = await self._drop_unshareable(decision, record.vendor)
        record = record.with_changes(now, reasons=decision.reasons, trace=decision.trace,
                                     compliance=tuple(report_json(r) for r in decision.reports))
        self._audit("RequestReceived", record, actor=record.vendor, at=now,
                    description=f"asks for {len(asks_of(request))} item(s)")
        match decision.outcome:
            case Outcome.AGREE:
                record = await self._agree(record, decision.granted, now, new=new,
                                           description="the person's terms agree")
            case Outcome.COUNTER if not record.takes_offers:
                # An LWS access request has no step to take an offer: less than asked is no.
                record = record.with_changes(
                    now, ended="refused", reasons=(
                        *decision.reasons, "the person's terms allow less than asked; ask "
                        "again within them"),
                    negotiation=self._step(record, Event.TERMINATE, Role.PROVIDER,
                                           reason="refused"))
                record = await self._store(record, new=new)
                self._audit("AgreementRefused", record, actor=self.owner,
                            description="; ".join(record.reasons))
            case Outcome.COUNTER:
                offer = offer_for(decision.granted, uid=f"{record.url}#offer-{_short_id()}",
                                  person=self.owner, vendor=record.vendor)
                record = record.with_changes(
                    now, offer=offer, negotiation=self._step(record, Event.OFFER, Role.PROVIDER))
                record = await self._store(record, new=new)
                self._audit("TermsProffered", record, actor=self.owner,
                            description="; ".join(decision.reasons))
            case Outcome.REFUSE:
                record = record.with_changes(
                    now, ended="refused",
                    negotiation=self._step(record, Event.TERMINATE, Role.PROVIDER,
                                           reason="refused"))
                record = await self._store(record, new=new)
                self._audit("AgreementRefused", record, actor=self.owner,
                            description="; ".join(decision.reasons))
            case Outcome.ASK_PERSON:
                items = decision.granted + decision.undecided
                proposal = offer_for(items, uid=f"{record.url}#proposal", person=self.owner,
                                     vendor=record.vendor)
                waiting = Negotiation(record.id, Role.PROVIDER, State.REQUESTED, True, None,
                                      record.negotiation.history)
                # The person approves exactly the resources listed now, never ones found later.
                proposed = {a.target: tuple(t.url for t in found[a.target]) for a in items}
                record = record.with_changes(now, offer=proposal, negotiation=waiting,
                                             proposed=proposed)
                record = await self._store(record, new=new)
        return record

    async def _drop_unshareable(
        self, decision: Decision, vendor: str,
    ) -> tuple[Decision, dict[str, list[Target]]]:
        """Items on targets never shared (outside the storage, the agent's own records, the
        storage root) and on data the person does not hold are refused rather than agreed or
        asked; returns the decision and the resources behind each remaining target."""
        wanted = sorted({a.target for a in decision.granted + decision.undecided})
        refused: dict[str, str] = {}
        for target in wanted:
            if not target.startswith(PD):
                try:
                    shareable_target(target, self.area)
                except TargetRefused as exc:
                    refused[target] = str(exc)
        for why in sorted(set(refused.values())):
            decision = without_targets(decision, {t for t, w in refused.items() if w == why},
                                       why)
        wanted = [t for t in wanted if t not in refused]
        found = dict(zip(wanted, await asyncio.gather(
            *(self._targets(t, vendor, look=t.startswith(PD)) for t in wanted)), strict=True))
        missing = {t for t, targets in found.items() if not targets}
        if missing and time.monotonic() - self._refreshed > 1.0:
            # The ledger may have grown since the last refresh: look again before refusing.
            await self.refresh()
            again = await asyncio.gather(*(self._targets(t, vendor) for t in missing))
            found.update(zip(missing, again, strict=True))
            missing = {t for t, targets in found.items() if not targets}
        decision = without_targets(decision, missing, "the person holds no such data to share")
        return decision, found

    async def _targets(self, target: str, vendor: str, *, look: bool = True) -> list[Target]:
        """The pod resources behind one agreed target (a pd: category or a resource URL).
        ``look=False`` skips checking that they exist: what a vendor is answered must not tell
        it whether a resource it named exists (that is looked at when access is granted)."""
        if target.startswith(PD):
            if self._map is None:
                await self.refresh()
            vendor_id = self._vendor_ids.get(vendor)
            mapped = targets_for(self._map or {}, target, vendor_id or "", self.ledger,
                                 self._owners)
            # Purchases are shared per vendor: one the ledger does not know has none.
            candidates = [t for t in mapped
                          if vendor_id or not t.url.startswith(self.layout.transactions())]
        else:
            try:
                url = shareable_target(target, self.area)
            except TargetRefused:
                return []  # outside the pod, or the agent's own records: never shared
            # A membership or statement of another vendor's side is not this vendor's to ask for.
            if belongs_elsewhere(url, self._vendor_ids.get(vendor), self._owners, self.ledger):
                return []
            candidates = [Target(url, members=url.endswith("/"))]
        if not look:
            return candidates
        present = await asyncio.gather(*(self._exists(t.url) for t in candidates))
        return [t for t, ok in zip(candidates, present, strict=True) if ok]

    async def _exists(self, url: str) -> bool:
        try:
            await self.access.locate(url)  # cached; the grant needs it anyway
        except NotFound:
            return False
        return True

    def _step(self, record: NegotiationRecord, event: Event, sender: Role,
              reason: str | None = None) -> Negotiation:
        try:
            return transition(record.negotiation, event, sender=sender, reason=reason)
        except ProtocolViolation as exc:
            raise StepNotAllowed(str(exc)) from exc

    async def accept(self, negotiation_id: str, vendor: str) -> NegotiationRecord:
        """The vendor accepts the agent's offer: it becomes the agreement."""
        async with self._lock(negotiation_id):
            record = await self.owned(negotiation_id, vendor)
            if record.negotiation.awaiting_person:
                raise StepNotAllowed("the person has not decided yet; there is nothing to accept")
            now = self.clock()
            record = record.with_changes(
                now, negotiation=self._step(record, Event.ACCEPT, Role.CONSUMER))
            assert record.offer is not None
            return await self._agree(record, tuple(asks_of(record.offer)), now,
                                     chosen=record.proposed,
                                     description="the vendor accepted the person's offer")

    async def verify(self, negotiation_id: str, vendor: str,
                     countersigned: Mapping[str, Any]) -> NegotiationRecord:
        """The vendor returns the agreement with its own proof added: the agreement is final."""
        async with self._lock(negotiation_id):
            record = await self.owned(negotiation_id, vendor)
            if record.agreement is None or record.state is not State.AGREED:
                raise StepNotAllowed(f"there is no agreement to verify in state {record.state}")
            vendor_proof = await self._check_countersignature(record.agreement, countersigned)
            now = self.clock()
            negotiation = self._step(record, Event.VERIFY, Role.CONSUMER)
            record = record.with_changes(now, negotiation=negotiation)
            record = record.with_changes(
                now, agreement=countersigned_by(record.agreement, vendor_proof),
                vendor_key=vendor_proof["verificationMethod"],
                negotiation=self._step(record, Event.FINALIZE, Role.PROVIDER))
            record, _ = await asyncio.gather(
                self._store(record), self._write_agreement_record(record, "Finalized"))
            self._audit("AgreementReached", record, actor=vendor,
                        description="the vendor countersigned the agreement")
            return record

    async def _check_countersignature(self, ours: Mapping[str, Any],
                                      theirs: Mapping[str, Any]) -> dict[str, str]:
        """The vendor's proof, when ``theirs`` is the agent's own agreement plus that proof and
        it verifies; canonicalising runs off the event loop, within a deadline."""
        try:
            proof = countersignature_of(ours, theirs, own_key=self.key.verification_method)
            await verify_proofs_async({**ours, "proof": proof})
        except CountersignatureRefused as exc:
            raise AgreementMismatch(str(exc)) from exc
        except IntegrityError as exc:
            raise AgreementMismatch(f"the vendor's proof does not verify: {exc}") from exc
        return proof

    async def vendor_terminates(self, negotiation_id: str, vendor: str,
                                reason: str | None) -> NegotiationRecord:
        async with self._lock(negotiation_id):
            record = await self.owned(negotiation_id, vendor)
            return await self._end(record, "terminated", actor=vendor,
                                   reason=reason or "terminated by the vendor", notify=False)

    # -- the person's decisions --------------------------------------------------------------

    async def pending(self) -> list[PendingRequest]:
        return [PendingRequest(r.id, r.vendor, r.created,
                               tuple(asks_of(r.offer)) if r.offer else (), r.consideration,
                               r.trace, dict(r.proposed or {}))
                for r in await self.records()
                if r.negotiation.awaiting_person and r.state is State.REQUESTED]

    async def _waiting(self, negotiation_id: str) -> NegotiationRecord:
        record = await self.load(negotiation_id)
        if not (record.negotiation.awaiting_person and record.state is State.REQUESTED):
            raise StepNotAllowed(f"negotiation {negotiation_id} is not waiting for a decision "
                                 f"(state {record.state})")
        return record

    async def approve(self, negotiation_id: str,
                      only: Sequence[str] | None = None) -> NegotiationRecord:
        """The person agrees to what the terms left open (what they refused stays refused):
        to exactly the resources they were shown, or to the ones of those they name in
        ``only``. Leaving out a whole item turns the answer into an offer of the rest."""
        async with self._lock(negotiation_id):
            record = await self._waiting(negotiation_id)
            now = self.clock()
            assert record.offer is not None
            shown = record.proposed
            chosen = dict(shown) if shown is not None else None
            if only is not None:
                choices = {u for urls in (shown or {}).values() for u in urls}
                unknown = sorted(set(only) - choices)
                if unknown:
                    raise StepNotAllowed(
                        f"{', '.join(unknown)} is not among the resources of this request; "
                        f"choose from: {', '.join(sorted(choices)) or '(none)'}")
                chosen = {t: tuple(u for u in urls if u in only)
                          for t, urls in (shown or {}).items()}
            asks = tuple(a for a in asks_of(record.offer)
                         if chosen is None or chosen.get(a.target))
            if not asks:
                raise StepNotAllowed("nothing would be shared; use 'requests deny' to decline")
            named = sorted({u for urls in (chosen or {}).values() for u in urls})
            present = await asyncio.gather(*(self._exists(u) for u in named))
            gone = [u for u, ok in zip(named, present, strict=True) if not ok]
            if gone:
                raise StepNotAllowed(
                    f"{', '.join(gone)} is not in your pod; approve the rest with --only, or "
                    "deny the request")
            resumed = Negotiation(record.id, Role.PROVIDER, State.REQUESTED, False, None,
                                  record.negotiation.history)
            record = record.with_changes(now, negotiation=resumed, proposed=chosen)
            same = _same_items(asks, tuple(asks_of(record.request)))
            if not same and not record.takes_offers:
                raise StepNotAllowed("an LWS access request is granted whole or not at all; "
                                     "approve it without --only, or deny it")
            if same:
                record = await self._agree(record, asks, now, actor=self.owner, chosen=chosen,
                                           description="the person agreed")
                self._tell(record, "ContractAgreementMessage",
                           agreement=dict(record.agreement or {}),
                           grant=[a.to_json() for a in record.access])
                return record
            # The proposal the person saw becomes an offer of its own, like any the terms make.
            offer = offer_for(asks, uid=f"{record.url}#offer-{_short_id()}", person=self.owner,
                              vendor=record.vendor)
            record = record.with_changes(
                now, offer=offer, negotiation=self._step(record, Event.OFFER, Role.PROVIDER))
            record = await self._store(record)
            self._audit("TermsProffered", record, actor=self.owner,
                        description="the person agreed to part of the request")
            self._tell(record, "ContractOfferMessage", policy=offer, reason=list(record.reasons))
            return record

    async def deny(self, negotiation_id: str, reason: str | None = None) -> NegotiationRecord:
        async with self._lock(negotiation_id):
            record = await self._waiting(negotiation_id)
            return await self._end(record, "refused", actor=self.owner,
                                   reason=reason or "the person declined the request")

    async def revoke(self, some_id: str, *, reason: str | None = None) -> NegotiationRecord:
        """End an agreement now: its grants go, the vendor is told. ``some_id`` is the
        negotiation id or the id of one of its grants."""
        negotiation_id = some_id.split("-", 1)[0]
        async with self._lock(negotiation_id):
            record = await self.load(negotiation_id)
            if record.state is State.TERMINATED:
                raise StepNotAllowed(f"negotiation {negotiation_id} has already ended "
                                     f"({record.ended})")
            return await self._end(record, "revoked", actor=self.owner,
                                   reason=reason or "the person revoked the agreement")

    # -- expiry ------------------------------------------------------------------------------

    def _negotiation_of(self, grant: GrantView) -> str | None:
        """The negotiation a grant carries out: its id is the negotiation's (``ID`` or
        ``ID-n``) and its agreement is that negotiation, whatever port the agent ran on."""
        negotiation_id = grant.id.split("-", 1)[0]
        if (grant.agreement and negotiation_id.isalnum()
                and grant.agreement.endswith(f"/negotiations/{negotiation_id}")):
            return negotiation_id
        return None

    def _carries_agreement(self, grant: GrantView) -> bool:
        return self._negotiation_of(grant) is not None

    async def expire_due(self) -> tuple[list[NegotiationRecord], datetime | None]:
        """End every agreement whose time is up (the grants go with them, the vendor is told);
        returns those ended and the next end still to come. The due grants come from the grant
        index (one conditional GET) and end first, all at once; only then are the records of
        their agreements read, and no other. The index entries of an agreement's grants go
        once its record has ended, so a pass that fails halfway is taken up by the next."""
        now = self.clock()
        index = await self.access.index(fresh=True)
        due: dict[str | None, list[GrantView]] = {}
        for grant in index.due(now):
            due.setdefault(self._negotiation_of(grant), []).append(grant)
        # Access ends first. Each grant is logged as expired by the access layer: one line,
        # however often and by whichever process it is seen.
        await asyncio.gather(
            self.access.end(due.pop(None, []), how="expired", audit=True),
            self.access.end([g for grants in due.values() for g in grants], how="expired",
                            audit=True, keep_entries=True))
        ended = []
        for negotiation_id, grants in sorted(due.items(), key=lambda item: str(item[0])):
            assert negotiation_id is not None
            async with self._lock(negotiation_id):
                with contextlib.suppress(UnknownNegotiation):
                    record = await self.load(negotiation_id)
                    until = record.until
                    if record.state in IN_FORCE and until is not None and until <= now:
                        # Every grant of the agreement has ended (none ends after `until`):
                        # the revokes in _end need not look for them.
                        self.access.mark_ended(record.grant_ids)
                        if self._terms is None:
                            with contextlib.suppress(PodError, VrmAgentError):
                                await self._ready()  # the agreement record names its terms
                        # StepNotAllowed: it ended meanwhile (revoked, say).
                        with contextlib.suppress(StepNotAllowed):
                            ended.append(await self._end(
                                record, "expired", actor=None,
                                reason="the agreement reached its end"))
                # Ended now, ended before, unknown, or one grant ending before the others.
                await self.access.forget([g.id for g in grants])
        return ended, (await self.access.index()).next_end(now)

    async def run_expiry(self, *, max_sleep: float = INDEX_POLL_SECONDS) -> None:
        """End agreements and grants when their time comes, until cancelled (the daemon and the
        expiry keeper run this). The loop wakes at the next end it knows, and every ``max_sleep``
        seconds to see whether another process added a grant (a conditional GET of the
        index, answered 304 while nothing changed)."""
        while True:
            upcoming: datetime | None = None
            try:
                _, upcoming = await self.expire_due()
            except (PodError, VrmAgentError) as exc:
                log.warning("expiry pass failed", extra={"problem": str(exc)})
            self.access.deadline.reset(upcoming)
            await self.access.deadline.sleep(max_sleep=max_sleep)

    # -- agreeing and ending -----------------------------------------------------------------

    async def _agree(self, record: NegotiationRecord, asks: Sequence[Ask], now: datetime, *,
                     new: bool = False, actor: str | None = None,
                     chosen: Mapping[str, Sequence[str]] | None = None,
                     description: str) -> NegotiationRecord:
        """Grant exactly what is agreed, sign it, and record it; all writes at once. An earlier
        agreement of the same vendor on the same resource for the same purpose is replaced:
        it ends once the new one is in force, and both say so."""
        vendor_lock = self._vendor_locks.get(record.vendor)
        if vendor_lock is None:
            vendor_lock = self._vendor_locks[record.vendor] = asyncio.Lock()
        async with vendor_lock:
            asks = _within(asks, record.not_after, now)
            plans = await self._plan_access(record.id, record.vendor, asks, now, chosen)
            if record.lws is not None:
                await self._meets_resource_conditions(record, plans)
            resources = {r for _, urls in plans.values() for r in urls}
            # Looked up beside the writes, so an agreement that replaces none costs no more.
            earlier, stored = await asyncio.gather(
                self._overlapping(record, resources, {a.purpose for a in asks}),
                self._put_in_force(record, plans, asks, now, new=new, actor=actor,
                                   description=description))
            if earlier:
                stored = await self._store(stored.with_changes(
                    now, replaces=tuple(r.url for r in earlier),
                    reasons=(*stored.reasons,
                             *(f"replaces the earlier agreement {r.url}" for r in earlier))))
            for old in earlier:
                with contextlib.suppress(StepNotAllowed, UnknownNegotiation):
                    async with self._lock(old.id):
                        await self._end(await self.load(old.id), "replaced", actor=self.owner,
                                        reason=f"replaced by the agreement {stored.url}")
            return stored

    async def _overlapping(self, record: NegotiationRecord, resources: set[str],
                           purposes: set[str | None]) -> list[NegotiationRecord]:
        """The vendor's agreements in force on any of these resources for any of these
        purposes (found through the grants in force, so only those records are read)."""
        try:
            index = await self.access.index()  # kept in memory
        except PodError as exc:  # the new agreement stands; the person can revoke the old one
            log.warning("earlier agreements not checked", extra={"problem": str(exc)})
            return []
        now = self.clock()
        ids = {view.id.split("-", 1)[0] for view in index.entries.values()
               if view.agent == record.vendor and view.expires > now
               and view.agreement and view.agreement != record.url
               and resources & set(view.resources)}
        found = await asyncio.gather(*(self.load(i) for i in sorted(ids)),
                                     return_exceptions=True)
        earlier = []
        for old in found:
            if not isinstance(old, NegotiationRecord) or old.vendor != record.vendor or \
                    old.state not in IN_FORCE or old.agreement is None:
                continue
            body = {k: v for k, v in old.agreement.items() if k not in ("@context", "proof",
                                                                          "grant")}
            try:
                old_purposes = {a.purpose for a in asks_of(policy_from_json(body))}
            except MalformedMessage:
                continue
            if old_purposes & purposes:
                earlier.append(old)
        return earlier

    async def _put_in_force(self, record: NegotiationRecord,
                            plans: Mapping[tuple[datetime, bool], tuple[str, list[str]]],
                            asks: Sequence[Ask], now: datetime, *, new: bool,
                            actor: str | None, description: str) -> NegotiationRecord:
        access = tuple(GrantedAccess(tuple(resources), until)
                       for (until, _), (_, resources) in plans.items())
        agreement = agreement_for(asks, uid=f"urn:uuid:{uuid.uuid4()}", person=self.owner,
                                  vendor=record.vendor, now=now,
                                  consideration=record.consideration)
        signed = add_proof(agreement_document(agreement, access), self.key, created=now)
        record = record.with_changes(
            now, agreement=signed, access=access, offer=None,
            grant_ids=tuple(grant_id for grant_id, _ in plans.values()),
            negotiation=self._step(record, Event.AGREE, Role.PROVIDER))
        grants = [self.access.grant(record.vendor, resources, [AccessMode.READ], until=until,
                                    members=members, agreement=record.url, grant_id=grant_id,
                                    now=now)
                  for (until, members), (grant_id, resources) in plans.items()]
        results = await asyncio.gather(
            *grants, self._store(record, new=new), self._write_agreement_record(record, "Agreed"),
            return_exceptions=True)
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            await self._undo(record, plans, failure, new=new)
        stored = results[len(grants)]
        assert isinstance(stored, NegotiationRecord)
        resources = sorted({r for a in access for r in a.resources})
        self._audit("AgreementReached", stored, actor=actor or self.owner,
                    description=description)
        self._audit("AccessGranted", stored, actor=self.owner, resources=resources)
        return stored

    async def _plan_access(
        self, negotiation_id: str, vendor: str, asks: Sequence[Ask], now: datetime,
        chosen: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[tuple[datetime, bool], tuple[str, list[str]]]:
        """(end, containers?) -> (grant id, resources): one grant per distinct end and kind.
        With ``chosen`` (what the person approved), exactly those resources per target."""
        plans: dict[tuple[datetime, bool], tuple[str, list[str]]] = {}
        readable = [a for a in asks if a.action in USE_INCLUDES]
        if chosen is not None:
            found = [[Target(url, members=url.endswith("/")) for url in chosen.get(a.target, ())]
                     for a in readable]
        else:
            found = await asyncio.gather(*(self._targets(a.target, vendor) for a in readable))
        for ask, targets in zip(readable, found, strict=True):
            until = end_of(now, ask.duration or DEFAULT_DURATION)
            for target in targets:
                key = (until, target.members)
                if key not in plans:
                    suffix = f"-{len(plans)}" if plans else ""
                    plans[key] = (negotiation_id + suffix, [])
                if target.url not in plans[key][1]:
                    plans[key][1].append(target.url)
        if not plans:
            raise StepNotAllowed("nothing agreed is held in the pod: there is nothing to grant")
        return plans

    async def _undo(self, record: NegotiationRecord, plans: Mapping[Any, tuple[str, list[str]]],
                    failure: BaseException, *, new: bool) -> None:
        """A grant or a record could not be written: take back what was, then say so."""
        for grant_id, _ in plans.values():
            with contextlib.suppress(GrantNotFound, PodError):
                await self.access.revoke(grant_id)
        with contextlib.suppress(PodError):
            await self.pod.delete(self.agreement_url(record.id))
        if new:
            with contextlib.suppress(PodError):
                await self.pod.delete(self.record_url(record.id))
        log.error("agreement not enforced", extra={"negotiation": record.id,
                                                   "problem": str(failure)})
        if isinstance(failure, PreconditionFailed):
            raise StepNotAllowed("the negotiation changed meanwhile; try again") from failure
        raise EnforcementFailed(f"the agreement could not be put in force: {failure}") \
            from failure

    async def _write_agreement_record(self, record: NegotiationRecord, state: str, *,
                                      invalidated: datetime | None = None,
                                      revoked_by: str | None = None) -> None:
        assert record.agreement is not None
        body = {k: v for k, v in record.agreement.items()
                if k not in ("@context", "proof", "grant")}
        agreement = policy_from_json(body)
        valid_from = min((record.created, record.modified))
        relationship = await self._relationship_of(record.vendor)
        graph = agreement_record_graph(
            self.agreement_url(record.id), agreement, record.agreement, vendor=record.vendor,
            state=state, valid_from=_agreement_start(record.agreement) or valid_from,
            valid_through=record.until or valid_from + timedelta(seconds=1),
            terms=[p.uid for p in self._terms or []][:1], invalidated=invalidated,
            revoked_by=revoked_by, relationship=relationship)
        await self.ledger.write_graph(self.agreement_url(record.id), graph)

    async def _relationship_of(self, vendor: str) -> str | None:
        """The person's relationship record with the vendor whose agent is ``vendor``, so an
        agreement says who holds what in the person's own terms. A vendor the ledger does not
        know gets a record at its first agreement (a vendor the person now deals with); if that
        cannot be written, the agreement stands without the link."""
        vendor_id = self._vendor_ids.get(vendor)
        if vendor_id is None:
            lock = self._link_locks.get(vendor)
            if lock is None:
                lock = self._link_locks[vendor] = asyncio.Lock()
            async with lock:
                vendor_id = self._vendor_ids.get(vendor)
                if vendor_id is None:
                    try:
                        vendor_id = await vendor_for_agent(self.ledger, vendor,
                                                           since=self.clock().date())
                    except (PodError, VrmAgentError) as exc:
                        log.warning("vendor not recorded", extra={"vendor": vendor,
                                                                  "problem": str(exc)})
                        return None
                    self._vendor_ids[vendor] = vendor_id
        return self.layout.resource("relationships", vendor_id) + "#it"

    async def _end(self, record: NegotiationRecord, how: str, *, actor: str | None,
                   reason: str, notify: bool = True) -> NegotiationRecord:
        """Terminate: grants removed first (access ends before anything else is said)."""
        now = self.clock()
        removed: list[str] = []
        for grant_id in record.grant_ids:
            with contextlib.suppress(GrantNotFound):
                view = await self.access.revoke(grant_id)
                removed += view.resources
        closed: list[str] = []
        if record.channels:  # the pod would go on notifying the vendor: its channels go too
            from vrm_agent.daemon.changes import Changes  # it builds on this module

            closed = await Changes(self).close_channels(record)
        had_agreement = record.agreement is not None and record.state is not State.TERMINATED
        ended = record.with_changes(
            now, ended=how, reasons=(*record.reasons, reason),
            channels=tuple(c for c in record.channels if c not in closed),
            negotiation=self._step(record, Event.TERMINATE, Role.PROVIDER, reason=how))
        writes = [self._store(ended)]
        if had_agreement:
            state = {"revoked": "Revoked", "expired": "Expired"}.get(how, "Terminated")
            writes.append(self._write_agreement_record(
                ended, state, invalidated=now if how != "expired" else None,
                revoked_by=actor if how == "revoked" else None))
        stored, *_ = await asyncio.gather(*writes)
        kind = {"revoked": ("AgreementRevoked", "AccessRevoked"),
                "expired": ("AgreementExpired", "AccessExpired")}.get(
                    how, ("AgreementRevoked" if had_agreement else "AgreementRefused",
                          "AccessRevoked"))
        self._audit(kind[0], stored, actor=actor, description=reason)
        if removed:
            self._audit(kind[1], stored, actor=actor, resources=sorted(removed))
        if notify:
            self._tell(stored, "ContractNegotiationTerminationMessage", event=how,
                       reason=[reason])
        return stored

    async def _meets_resource_conditions(
            self, record: NegotiationRecord,
            plans: Mapping[Any, tuple[str, list[str]]]) -> None:
        """An LWS request's mediaType and type constraints hold for every resource about to be
        opened (read just before granting, so a refusal by the terms says nothing of them)."""
        assert record.lws is not None
        try:
            request = lws_from_stored(record.lws, storage=self.layout.storage)
        except AccessRequestRefused as exc:
            raise StepNotAllowed(f"the access request kept with {record.id} cannot be read: "
                                 f"{exc}") from None
        opened = {r for _, resources in plans.values() for r in resources}
        for policy in request.policies:
            if not (policy.media_types or policy.resource_types):
                continue
            for url in sorted(opened & set(policy.resources)):
                try:
                    head = await self.pod.head(url)
                except NotFound:
                    raise StepNotAllowed(f"{url} is not in the pod") from None
                if not resource_meets(policy, url, head.content_type, head.links.all("type")):
                    raise StepNotAllowed(f"{url} does not meet the request's mediaType or "
                                         "type constraint; nothing was granted")

    def _tell(self, record: NegotiationRecord, message_type: str, **fields: Any) -> None:
        if record.lws is not None:
            self.notifier.send(record.callback, lws_notice(
                record, message_type, fields.get("event"), agent_url=self.agent_url,
                storage=self.layout.storage, owner=self.owner, now=self.clock()))
            return
        fields = {k: (policy_json(v) if isinstance(v, Policy) else v) for k, v in fields.items()}
        message = message_json(message_type, negotiation=record.url,
                               state=record.state.value if record.state else None, **fields)
        self.notifier.send(record.callback, message)


def _within(asks: Sequence[Ask], not_after: datetime | None, now: datetime) -> list[Ask]:
    """The items, each shortened to end by ``not_after`` (an LWS request's end) when its time,
    counted from now, would pass it."""
    if not_after is None:
        return list(asks)
    left = timedelta(seconds=math.floor((not_after - now).total_seconds()))
    if left < timedelta(seconds=1):
        raise StepNotAllowed("the time the request asked for has passed; nothing was granted")
    return [a if a.duration is not None and a.duration <= left
            else dataclasses.replace(a, duration=left) for a in asks]


def _same_items(a: Sequence[Ask], b: Sequence[Ask]) -> bool:
    def key(ask: Ask) -> tuple[str, str, str | None, float | None]:
        return (ask.target, ask.action, ask.purpose,
                ask.duration.total_seconds() if ask.duration else None)

    return sorted(map(key, a), key=str) == sorted(map(key, b), key=str)


def _agreement_start(document: Mapping[str, Any]) -> datetime | None:
    proofs = proofs_of(document)
    created = proofs[0].get("created") if proofs else None
    return datetime.fromisoformat(str(created).replace("Z", "+00:00")) if created else None


__all__ = ["PROTOCOL_CONTEXT", "NegotiationError", "NegotiationService", "PendingRequest"]
