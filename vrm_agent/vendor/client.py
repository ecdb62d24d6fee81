"""A vendor's side of the protocol: find a person's agent, ask, answer, countersign, read.

The vendor speaks to the agent with the same Solid-OIDC credentials it uses on pods (its
:class:`~vrm_agent.pod.client.PodClient`), and reads what it was granted with its own token, so
what it may read is what the pod says, nothing else. It follows the negotiation with the same
state machine the agent uses, from the consumer's side: an answer the protocol does not allow
is refused here as well.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rdflib import URIRef

from vrm_agent.errors import PodError, VrmAgentError
from vrm_agent.integrity import SigningKey, add_proof, verify_proofs, verify_proofs_async
from vrm_agent.integrity.proofs import IntegrityError
from vrm_agent.negotiation.durations import duration_text
from vrm_agent.negotiation.odrl import Constraint, Policy, Rule
from vrm_agent.negotiation.protocol import (
    Event,
    Negotiation,
    ProtocolViolation,
    Role,
    State,
    transition,
)
from vrm_agent.negotiation.records import STORED_CONTEXT, GrantedAccess
from vrm_agent.negotiation.wire import (
    MalformedMessage,
    full_iri,
    message_json,
    policy_from_json,
)
from vrm_agent.pod.client import PodClient, PodResponse

if TYPE_CHECKING:
    from vrm_agent.vendor.inbox import Inbox

VRM_AGENT = URIRef("https://w3id.org/vrm-agent/ns#agent")
DISCOVERY_PATH = ".well-known/vrm-agent"
JSON_LD = "application/ld+json"

# How the consumer's copy moves when the provider reports a new state.
_PROVIDER_STEPS = {State.OFFERED: Event.OFFER, State.AGREED: Event.AGREE,
                   State.FINALIZED: Event.FINALIZE, State.TERMINATED: Event.TERMINATE}


class VendorError(VrmAgentError):
    """The person's agent could not be found, or answered outside the protocol."""


class AgentRefused(VendorError):
    """The agent answered with a problem document."""

    def __init__(self, status: int, problem: Mapping[str, Any],
                 retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {problem.get('title')}: {problem.get('detail')}")
        self.status = status
        self.problem = dict(problem)
        self.retry_after = retry_after  # seconds, when the agent said (429, 503)


def _seconds(retry_after: str | None) -> float | None:
    """A Retry-After given in seconds; an HTTP date or anything else is not read."""
    text = (retry_after or "").strip()
    return float(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


@dataclass(frozen=True)
class AgentInfo:
    url: str
    person: str
    negotiations: str
    signing_key: str | None = None  # the verification method of the agent's agreement proofs


@dataclass(frozen=True)
class NegotiationView:
    """The vendor's copy of one negotiation, as the agent last described it."""

    url: str
    negotiation: Negotiation
    offer: Policy | None = None
    agreement: Mapping[str, Any] | None = None
    access: tuple[GrantedAccess, ...] = ()
    reasons: tuple[str, ...] = ()
    event: str | None = None  # why it ended: refused, revoked, expired, terminated
    document: Mapping[str, Any] = field(default_factory=dict)
    agent_key: str | None = None  # the agent's signing key, from its discovery document

    @property
    def state(self) -> State | None:
        return self.negotiation.state

    @property
    def awaiting_person(self) -> bool:
        return self.negotiation.awaiting_person

    @property
    def resources(self) -> list[str]:
        return sorted({r for a in self.access for r in a.resources})


def request_policy(
    targets: Sequence[str], *, purpose: str, duration: timedelta | None = None,
    action: str = "use", consideration: str | None = None, uid: str | None = None,
) -> Policy:
    """An odrl:Request for ``targets`` (pd: categories or resource URLs) for a DPV purpose."""
    constraints = [Constraint("purpose", "eq", full_iri(purpose))]
    if duration is not None:
        constraints.append(Constraint("elapsedTime", "eq", duration_text(duration)))
    return Policy(uid or f"urn:uuid:{uuid.uuid4()}", "Request",
                  (Rule("permission", action, tuple(full_iri(t) for t in targets),
                        tuple(constraints)),), consideration=consideration)


class VendorAgent:
    """With an ``inbox``, notifications go there (its URL is the callback address) and every
    agent found by :meth:`discover` is trusted to sign them with the key it publishes."""

    def __init__(self, pod: PodClient, *, signing_key: SigningKey | None = None,
                 callback: str | None = None, inbox: Inbox | None = None) -> None:
        self.pod = pod
        self.key = signing_key or SigningKey()
        self.inbox = inbox
        self.callback = callback or (inbox.url if inbox is not None else None)

    # -- finding the agent -------------------------------------------------------------------

    async def discover(self, person_webid: str) -> AgentInfo:
        """From the person's WebID profile (``vrm:agent``) to the agent's discovery document."""
        try:
            profile = await self.pod.get_graph(person_webid, authenticated=False)
        except PodError as exc:
            raise VendorError(f"the WebID profile {person_webid} cannot be read: {exc}") from exc
        agents = [str(o) for o in profile.graph.objects(URIRef(person_webid), VRM_AGENT)]
        if not agents:
            raise VendorError(f"{person_webid} names no agent (no vrm:agent in the profile)")
        url = agents[0] if agents[0].endswith("/") else agents[0] + "/"
        response = await self.pod.request("GET", url + DISCOVERY_PATH,
                                          headers={"Accept": JSON_LD}, authenticated=False)
        try:
            document = response.json()
        except PodError as exc:
            raise VendorError(f"the agent at {url} has no readable discovery document") from exc
        if not isinstance(document, dict):
            raise VendorError(f"the agent at {url} has no readable discovery document")
        endpoint = _id_of(document, "vrm:negotiationEndpoint")
        if not endpoint:
            raise VendorError(f"the agent at {url} names no negotiation endpoint")
        if _id_of(document, "vrm:actsFor") != person_webid:
            raise VendorError(f"the agent at {url} does not act for {person_webid}")
        info = AgentInfo(url, person_webid, endpoint, _id_of(document, "vrm:signingKey"))
        if self.inbox is not None:
            self.inbox.trust(info)
        return info

    # -- the messages ------------------------------------------------------------------------

    async def _send(self, url: str, message: Mapping[str, Any], method: str = "POST",
                    ) -> dict[str, Any]:
        response = await self.pod.request(
            method, url, headers={"Content-Type": JSON_LD, "Accept": JSON_LD},
            body=json.dumps(message) if method == "POST" else None, expect_ok=False)
        return self._body(response)

    def _body(self, response: PodResponse) -> dict[str, Any]:
        try:
            body = json.loads(response.body) if response.body else {}
        except ValueError:
            body = {}
        if response.status >= 400:
            raise AgentRefused(response.status, body if isinstance(body, dict) else {},
                               _seconds(response.headers.get("Retry-After")))
        if not isinstance(body, dict):
            raise VendorError("the agent answered with something other than a JSON object")
        return body

    async def request(self, agent: AgentInfo, policy: Policy) -> NegotiationView:
        own = transition(Negotiation("", Role.CONSUMER), Event.REQUEST, sender=Role.CONSUMER)
        body = await self._send(agent.negotiations, message_json(
            "ContractRequestMessage", policy=policy, callbackAddress=self.callback))
        return self._follow(NegotiationView(str(body.get("id")), own,
                                            agent_key=agent.signing_key), body)

    async def status(self, view: NegotiationView) -> NegotiationView:
        return self._follow(view, await self._send(view.url, {}, method="GET"))

    async def accept(self, view: NegotiationView) -> NegotiationView:
        own = replace(view, negotiation=transition(view.negotiation, Event.ACCEPT,
                                                   sender=Role.CONSUMER))
        body = await self._send(view.url + "/events", message_json(
            "ContractNegotiationEventMessage", negotiation=view.url, event="ACCEPTED"))
        return self._follow(own, body)

    async def counter(self, view: NegotiationView, policy: Policy) -> NegotiationView:
        own = replace(view, negotiation=transition(view.negotiation, Event.REQUEST,
                                                   sender=Role.CONSUMER))
        body = await self._send(view.url + "/request", message_json(
            "ContractRequestMessage", negotiation=view.url, policy=policy,
            callbackAddress=self.callback))
        return self._follow(own, body)

    def countersign(self, view: NegotiationView) -> dict[str, Any]:
        """The agreement with the vendor's proof added, after checking the agent's."""
        if view.agreement is None:
            raise VendorError("there is no agreement to sign")
        try:
            signers = {p.verification_method for p in verify_proofs(view.agreement)}
        except IntegrityError as exc:
            raise VendorError(f"the agent's signature does not verify: {exc}") from exc
        return self._add_own_proof(view, signers)

    async def countersign_async(self, view: NegotiationView) -> dict[str, Any]:
        """:meth:`countersign` with the agent's proof checked off the event loop, within a
        deadline: the agreement comes from outside and could be built to canonicalise slowly."""
        if view.agreement is None:
            raise VendorError("there is no agreement to sign")
        try:
            signers = {p.verification_method for p in await verify_proofs_async(view.agreement)}
        except IntegrityError as exc:
            raise VendorError(f"the agent's signature does not verify: {exc}") from exc
        return self._add_own_proof(view, signers)

    def _add_own_proof(self, view: NegotiationView, signers: set[str]) -> dict[str, Any]:
        assert view.agreement is not None
        if view.agent_key is not None and view.agent_key not in signers:
            raise VendorError("the agreement is not signed with the key the agent publishes")
        return add_proof(view.agreement, self.key)

    async def verify(self, view: NegotiationView) -> NegotiationView:
        signed = await self.countersign_async(view)
        own = replace(view, negotiation=transition(view.negotiation, Event.VERIFY,
                                                   sender=Role.CONSUMER), agreement=signed)
        body = await self._send(view.url + "/agreement/verification", message_json(
            "ContractAgreementVerificationMessage", negotiation=view.url, agreement=signed))
        return self._follow(own, body)

    async def terminate(self, view: NegotiationView, reason: str) -> NegotiationView:
        body = await self._send(view.url + "/termination", message_json(
            "ContractNegotiationTerminationMessage", negotiation=view.url, reason=[reason]))
        return self._follow(view, body)

    def _follow(self, view: NegotiationView, body: Mapping[str, Any]) -> NegotiationView:
        """Move the vendor's copy to the state the agent reports, by the protocol's rules."""
        try:
            reported = State(str(body.get("state")))
        except ValueError as exc:
            raise VendorError(f"the agent reported an unknown state {body.get('state')!r}") \
                from exc
        negotiation = view.negotiation
        if reported is not negotiation.state:
            step = _PROVIDER_STEPS.get(reported)
            if reported is State.VERIFIED or step is None:
                raise VendorError(f"the agent moved to {reported} from {negotiation.state}")
            try:
                negotiation = transition(negotiation, step, sender=Role.PROVIDER,
                                         reason=body.get("event"))
            except ProtocolViolation as exc:
                raise VendorError(f"the agent answered outside the protocol: {exc}") from exc
        waiting = reported is State.REQUESTED and "status" in body
        negotiation = replace(negotiation, awaiting_person=waiting)
        try:
            offer = (policy_from_json(body["policy"]) if reported is State.OFFERED
                     and "policy" in body else None)
        except MalformedMessage as exc:
            raise VendorError(f"the agent's offer cannot be read: {exc}") from exc
        grants = body.get("grant", [])
        agreement = body.get("agreement") or view.agreement
        if view.agreement and body.get("agreement") and len(_proofs(view.agreement)) > len(
                _proofs(body["agreement"])):
            agreement = view.agreement  # keep the countersigned copy
        reasons = body.get("reason", [])
        return NegotiationView(
            str(body.get("id") or view.url), negotiation, offer, agreement,
            tuple(GrantedAccess.from_json(g) for g in grants) or view.access,
            tuple(reasons if isinstance(reasons, list) else [reasons]),
            body.get("event"), dict(body), view.agent_key)

    async def wait(self, view: NegotiationView, *, timeout: float = 30.0,
                   every: float = 0.2) -> NegotiationView:
        """Poll the status URL until the person has decided (or the timeout passes)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while view.awaiting_person and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(every)
            view = await self.status(view)
        return view

    # -- the granted data --------------------------------------------------------------------

    async def read(self, url: str) -> PodResponse:
        """Read a resource with the vendor's own token; the pod decides (200 or 403)."""
        return await self.pod.request("GET", url, headers={"Accept": "text/turtle"},
                                      expect_ok=False)

    async def keep(self, view: NegotiationView, container: str) -> str:
        """Keep the signed agreement in the vendor's own pod (contexts inline, so the pod can
        read it as RDF without fetching anything)."""
        if view.agreement is None:
            raise VendorError("there is no agreement to keep")
        document = {**view.agreement, "@context": STORED_CONTEXT[:2]}
        url = container + view.url.rstrip("/").rsplit("/", 1)[-1]
        await self.pod.put(url, json.dumps(document), content_type=JSON_LD)
        return url


def _id_of(document: Mapping[str, Any], key: str) -> str | None:
    """The IRI a discovery document names under ``key`` (``{"@id": ...}``), if any."""
    node = document.get(key)
    found = node.get("@id") if isinstance(node, dict) else None
    return found if isinstance(found, str) and found else None


def _proofs(document: Mapping[str, Any]) -> list[Any]:
    found = document.get("proof")
    return found if isinstance(found, list) else [found] if found else []
