"""The kit acting as a vendor against any agent implementation (docs/protocol.md §15).

Each check is one entry in :data:`CHECKS`: an id, the protocol section it tests, what it tests,
and a coroutine that returns what it saw or raises :class:`Failed` / :class:`Skipped`. Checks
share the negotiations they need through :class:`AgentRun`, which makes each one once (the
agreed negotiation, the counter-offer, ...); a check whose negotiation could not be reached is
skipped with the reason, so one failure is reported once.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from vrm_agent.conformance.expectations import Scenario
from vrm_agent.conformance.http import (
    JSON_LD,
    PROBLEM_TYPES,
    Answer,
    Caller,
    expect_problem,
)
from vrm_agent.conformance.results import Check, Failed, Skipped, clean

PROTOCOL_CONTEXT = "https://w3id.org/vrm-agent/protocol/v1"
PROTOCOL = PROTOCOL_CONTEXT
VRM_AGENT = "https://w3id.org/vrm-agent/ns#agent"
MAX_READS = 20  # granted resources read per check; an agent may list many
# How long after `until` the kit waits for the end (§10 says within about a second).
EXPIRY_GRACE_SECONDS = 10.0


# -- the messages the kit sends (pure) ------------------------------------------------------------


def request_message(ask: tuple[str, ...], purpose: str, duration: str | None, *,
                    uid: str | None = None, callback: str | None = None) -> dict[str, Any]:
    """A ContractRequestMessage for ``ask`` (categories or URLs) for a purpose and a time."""
    constraint: list[dict[str, Any]] = [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": {"id": purpose}}]
    if duration is not None:
        constraint.append({"leftOperand": "elapsedTime", "operator": "eq",
                           "rightOperand": {"@value": duration, "@type": "xsd:duration"}})
    message: dict[str, Any] = {
        "@context": PROTOCOL_CONTEXT, "type": "ContractRequestMessage",
        "policy": {"uid": uid or f"urn:uuid:{_uuid()}", "type": "Request",
                   "permission": [{"action": "use", "target": list(ask),
                                   "constraint": constraint}]}}
    if callback is not None:
        message["callbackAddress"] = callback
    return message


def scenario_message(scenario: Scenario) -> dict[str, Any]:
    return request_message(scenario.ask, scenario.purpose, scenario.duration)


def _uuid() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}"


def _permission(message: dict[str, Any]) -> dict[str, Any]:
    return message["policy"]["permission"][0]


def _set_duration(text: str) -> Callable[[dict[str, Any]], None]:
    def change(message: dict[str, Any]) -> None:
        _permission(message)["constraint"][1]["rightOperand"]["@value"] = text
    return change


@dataclass(frozen=True)
class BadRequest:
    """A new request §11 refuses: ``change`` spoils a good request (or ``body`` replaces it)."""

    id: str
    what: str
    status: int
    slug: str
    change: Callable[[dict[str, Any]], None] | None = None
    body: bytes | None = None


def _drop_context(m: dict[str, Any]) -> None:
    del m["@context"]


def _remote_context(m: dict[str, Any]) -> None:
    m["@context"] = "https://conformance.invalid/context.jsonld"


def _type(name: str) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["type"] = name
    return change


def _policy(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["policy"][key] = value
    return change


def _rule(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        if value is None:
            _permission(m).pop(key, None)
        else:
            _permission(m)[key] = value
    return change


def _operator(m: dict[str, Any]) -> None:
    _permission(m)["constraint"][0]["operator"] = "approximately"


def _no_purpose(m: dict[str, Any]) -> None:
    _permission(m)["constraint"] = _permission(m)["constraint"][1:]


def _callback(url: str) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["callbackAddress"] = url
    return change


def _names_negotiation(m: dict[str, Any]) -> None:
    m["negotiation"] = "https://conformance.invalid/negotiations/0123456789abcdef"


def _oversized(m: dict[str, Any]) -> None:
    m["policy"]["consideration"] = "x" * 70_000


BAD_REQUESTS: tuple[BadRequest, ...] = (
    BadRequest("err-not-json", "a body that is not JSON", 400, "malformed-message",
               body=b'{"@context": "https://w3id.org/vrm-agent/protocol/v1", "type": '),
    BadRequest("err-no-context", "a message with short names and no @context", 400,
               "malformed-message", _drop_context),
    BadRequest("err-remote-context", "an unknown remote @context (never fetched)", 400,
               "malformed-message", _remote_context),
    BadRequest("err-unknown-type", "an unknown message type", 400, "malformed-message",
               _type("ContractWishMessage")),
    BadRequest("err-wrong-type", "a valid message of another type than the endpoint takes",
               400, "wrong-message-type", _type("ContractNegotiationTerminationMessage")),
    BadRequest("err-policy-type", "a policy that is not an odrl:Request", 400,
               "malformed-message", _policy("type", "Offer")),
    BadRequest("err-relative-uid", "a policy uid that is not an absolute IRI", 400,
               "malformed-message", _policy("uid", "my-request-1")),
    BadRequest("err-no-permission", "a request without a permission", 400,
               "malformed-message", _policy("permission", [])),
    BadRequest("err-unknown-action", "an action ODRL does not define", 400,
               "malformed-message", _rule("action", "teleport")),
    BadRequest("err-unknown-operator", "an operator ODRL does not define", 400,
               "malformed-message", _operator),
    BadRequest("err-no-target", "a permission without a target", 400, "malformed-message",
               _rule("target", None)),
    BadRequest("err-relative-target", "a relative target IRI", 400, "malformed-message",
               _rule("target", ["email-home"])),
    BadRequest("err-no-purpose", "a permission without a purpose constraint", 400,
               "malformed-message", _no_purpose),
    BadRequest("err-duration-months", "a duration in months (no fixed length)", 400,
               "malformed-message", _set_duration("P1M")),
    BadRequest("err-duration-zero", "a zero duration", 400, "malformed-message",
               _set_duration("PT0S")),
    BadRequest("err-duration-negative", "a negative duration", 400, "malformed-message",
               _set_duration("-P1D")),
    BadRequest("err-duration-short", "a duration under one second", 400, "malformed-message",
               _set_duration("PT0.5S")),
    BadRequest("err-duration-text", "a duration that is not an xsd:duration", 400,
               "malformed-message", _set_duration("seven days")),
    BadRequest("err-callback-userinfo", "a callbackAddress with user information", 400,
               "bad-callback", _callback("https://user:secret@shop.invalid/inbox")),
    BadRequest("err-callback-http", "a plain-http callbackAddress off the loopback", 400,
               "bad-callback", _callback("http://shop.invalid/inbox")),
    BadRequest("err-names-negotiation", "a new request that names a negotiation", 400,
               "wrong-negotiation", _names_negotiation),
    BadRequest("err-too-large", "a body over 65,536 bytes", 413, "too-large", _oversized),
)


def bad_request_body(bad: BadRequest, base: dict[str, Any]) -> bytes:
    import json

    if bad.body is not None:
        return bad.body
    message = copy.deepcopy(base)
    assert bad.change is not None
    bad.change(message)
    return json.dumps(message).encode("utf-8")


# -- reading the agent's answers (pure) -----------------------------------------------------------


ANSWER_KINDS = {"agree": "AGREED", "counter": "OFFERED", "refuse": "TERMINATED",
                "person": "REQUESTED"}


def classify(answer: Answer, endpoint: str) -> str:
    """What a new request was answered with (agree, counter, refuse, person), when the answer
    is one §7.1 allows; :class:`Failed` saying why it is not otherwise."""
    doc = answer.document()
    state, url = doc.get("state"), doc.get("id")
    problems: list[str] = []
    if answer.content_type != JSON_LD:
        problems.append(f"Content-Type {answer.content_type or 'missing'}, not {JSON_LD}")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append("no absolute id")
    location = answer.headers.get("location")
    if answer.status in (201, 202) and (not location or urljoin(endpoint, location) != url):
        problems.append("Location is not the negotiation's id")
    kind = None
    if answer.status == 201 and state == "AGREED":
        kind = "agree"
        if not isinstance(doc.get("agreement"), dict):
            problems.append("AGREED without the signed agreement")
        if not _grants(doc):
            problems.append("AGREED without a grant")
    elif answer.status == 201 and state == "OFFERED":
        kind = "counter"
        policy = doc.get("policy")
        if not isinstance(policy, dict) or policy.get("type") not in ("Offer", "odrl:Offer"):
            problems.append("OFFERED without an odrl:Offer in policy")
    elif answer.status == 201 and state == "TERMINATED":
        kind = "refuse"
        if doc.get("event") != "refused":
            problems.append(f"TERMINATED with event {clean(doc.get('event'), 40)}, not refused")
    elif answer.status == 202 and state == "REQUESTED":
        kind = "person"
        if doc.get("status") != url:
            problems.append("REQUESTED without a status URL equal to its id")
    else:
        problems.append("not an answer §7.1 allows (201 AGREED/OFFERED/TERMINATED or "
                        "202 REQUESTED)")
    if problems or kind is None:
        raise Failed("; ".join(problems) + f" (answer: {answer.describe()})")
    return kind


def _grants(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    grants = doc.get("grant")
    if isinstance(grants, dict):
        grants = [grants]
    return [g for g in grants or [] if isinstance(g, dict)]


def granted_resources(doc: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for grant in _grants(doc):
        resources = grant.get("resource")
        for r in resources if isinstance(resources, list) else [resources]:
            if isinstance(r, str) and r.startswith(("http://", "https://")) and r not in found:
                found.append(r)
    return found


def grant_end(doc: Mapping[str, Any]) -> datetime | None:
    """The latest ``until`` of the grants, if every one can be read."""
    ends = []
    for grant in _grants(doc):
        try:
            ends.append(datetime.fromisoformat(str(grant.get("until")).replace("Z", "+00:00")))
        except ValueError:
            return None
    return max(ends) if ends and all(e.tzinfo for e in ends) else None


def node_id(document: Mapping[str, Any], key: str) -> str | None:
    node = document.get(key)
    found = node.get("@id") if isinstance(node, dict) else node
    return found if isinstance(found, str) and found else None


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Negotiated:
    scenario: Scenario
    url: str
    document: dict[str, Any]


@dataclass
class AgentRun:
    """Everything the checks share: whom to call, as whom, what the terms are said to answer,
    and the negotiations made so far."""

    target: str
    vendor: Caller
    anonymous: Caller
    scenarios: dict[str, Scenario]
    vendor_pod: Any  # PodClient: reads granted resources with the vendor's own token
    vendor_key: Any  # SigningKey the kit countersigns with
    other: Caller | None = None
    strict: bool = False
    expiry: bool = True
    opened: dict[str, str] = field(default_factory=dict)  # negotiation URL -> last state
    _memo: dict[str, tuple[Any, BaseException | None]] = field(default_factory=dict)

    async def once(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """``make()`` run once; later callers get its value or its error again."""
        if key not in self._memo:
            try:
                self._memo[key] = (await make(), None)
            except (Failed, Skipped) as exc:
                self._memo[key] = (None, exc)
        value, error = self._memo[key]
        if error is not None:
            raise error
        return value

    async def needs(self, key: str, make: Callable[[], Awaitable[Any]], what: str) -> Any:
        """As :meth:`once`, for a check that builds on it: its failure skips this one."""
        try:
            return await self.once(key, make)
        except (Failed, Skipped) as exc:
            raise Skipped(f"needs {what}, which was not reached: {exc}") from None

    # -- discovery --

    async def agent_url(self) -> tuple[str, str | None]:
        """The agent's URL, and the WebID it was found from (None: given the agent's URL)."""
        return await self.once("agent", self._find_agent)

    async def _find_agent(self) -> tuple[str, str | None]:
        from rdflib import Graph, URIRef

        answer = await self.anonymous.send("GET", self.target, auth=False,
                                           headers={"Accept": "text/turtle"})
        if answer.status == 200 and answer.content_type == "text/turtle":
            graph = Graph()
            try:
                graph.parse(data=answer.body.decode("utf-8"), format="turtle",
                            publicID=self.target)
            except Exception as exc:  # rdflib raises many kinds; any means "not a profile"
                raise Failed(f"{self.target} answers Turtle that cannot be read: "
                             f"{type(exc).__name__}") from None
            agents = sorted(str(o) for o in graph.objects(URIRef(self.target),
                                                          URIRef(VRM_AGENT)))
            if len(agents) > 1:
                raise Failed(f"the profile names {len(agents)} agents; §2 says one")
            if agents:
                url = agents[0]
                return (url if url.endswith("/") else url + "/"), self.target
        return (self.target if self.target.endswith("/") else self.target + "/"), None

    async def discovery(self) -> dict[str, Any]:
        return await self.once("discovery", self._discovery)

    async def _discovery(self) -> dict[str, Any]:
        url, webid = await self.agent_url()
        answer = await self.anonymous.send("GET", url + ".well-known/vrm-agent", auth=False)
        doc = answer.json()
        problems = []
        if answer.status != 200:
            problems.append(f"status {answer.status}")
        if answer.content_type != JSON_LD:
            problems.append(f"Content-Type {answer.content_type or 'missing'}, not {JSON_LD}")
        if not isinstance(doc, dict):
            raise Failed("; ".join([*problems, "not a JSON object"])
                         + f" (answer: {answer.describe()})")
        acts_for = node_id(doc, "vrm:actsFor")
        if not acts_for:
            problems.append("no vrm:actsFor")
        elif webid is not None and acts_for != webid:
            problems.append(f"vrm:actsFor is {clean(acts_for, 100)}, not the WebID {webid}")
        if not node_id(doc, "vrm:negotiationEndpoint"):
            problems.append("no vrm:negotiationEndpoint")
        if doc.get("vrm:protocol") != PROTOCOL:
            problems.append(f"vrm:protocol is not {PROTOCOL}")
        key = node_id(doc, "vrm:signingKey")
        if not key or not key.startswith("did:key:z"):
            problems.append("no did:key vrm:signingKey")
        if problems:
            raise Failed("; ".join(problems))
        return doc

    async def endpoint(self) -> str:
        """Where new requests go: the discovery document's, else the agent's URL plus
        ``negotiations`` (§7: paths are relative to the agent's URL)."""
        try:
            found = node_id(await self.discovery(), "vrm:negotiationEndpoint")
        except (Failed, Skipped):
            found = None
        return found or (await self.agent_url())[0] + "negotiations"

    async def signing_key(self) -> str:
        doc = await self.needs("discovery", self._discovery, "the discovery document")
        return str(node_id(doc, "vrm:signingKey"))

    # -- negotiations --

    async def negotiate(self, name: str) -> Negotiated:
        """The scenario's request, answered as the expectations say; Skipped when the terms
        answered otherwise in a way the protocol allows (Failed with ``--strict``)."""
        return await self.once(f"scenario:{name}", lambda: self._negotiate(name))

    async def _negotiate(self, name: str) -> Negotiated:
        scenario = self.scenarios[name]
        if scenario.skip:
            raise Skipped(f"the expectations say the terms answer no request by '{name}'")
        endpoint = await self.endpoint()
        answer = await self.vendor.send("POST", endpoint, scenario_message(scenario))
        doc = answer.document()
        if isinstance(doc.get("id"), str) and answer.status < 300:
            self.opened[doc["id"]] = str(doc.get("state"))
        kind = classify(answer, endpoint)
        if kind != scenario.answer:
            why = (f"asked {scenario.describe()}: the expectations say '{scenario.answer}', "
                   f"the agent answered '{kind}' ({doc.get('state')}), which the protocol "
                   f"allows; say in the expectations file which request its terms "
                   f"{_verb(scenario.answer)}")
            raise Failed(why) if self.strict else Skipped(why)
        return Negotiated(scenario, str(doc["id"]), doc)

    async def negotiate_again(self, name: str) -> Negotiated:
        """The scenario's request once more, as a negotiation of its own."""
        return await self._negotiate(name)

    async def any_negotiation(self) -> str:
        """The URL of some negotiation of this vendor's, whatever the terms answered."""
        for name in ("refuse", "agree", "person", "counter"):
            try:
                return (await self.negotiate(name)).url
            except (Failed, Skipped):
                continue
        if self.opened:
            return next(iter(self.opened))
        raise Skipped("needs a negotiation, and no request was answered with one")

    async def post(self, url: str, message_type: str, **fields: Any) -> Answer:
        body = {"@context": PROTOCOL_CONTEXT, "type": message_type, "negotiation": url,
                **fields}
        answer = await self.vendor.send("POST", url + _SUFFIX[message_type], body)
        state = answer.document().get("state")
        if url in self.opened and answer.status < 300 and isinstance(state, str):
            self.opened[url] = state
        return answer

    async def read(self, url: str) -> int:
        response = await self.vendor_pod.request("GET", url, headers={"Accept": "*/*"},
                                                 expect_ok=False)
        return int(response.status)

    async def close_all(self) -> None:
        """End whatever the run left open, so a run leaves no access behind."""
        for url, state in list(self.opened.items()):
            if state != "TERMINATED":
                try:
                    await self.post(url, "ContractNegotiationTerminationMessage",
                                    reason=["the conformance run is over"])
                except Failed:
                    continue


_SUFFIX = {"ContractNegotiationTerminationMessage": "/termination",
           "ContractNegotiationEventMessage": "/events",
           "ContractAgreementVerificationMessage": "/agreement/verification",
           "ContractRequestMessage": "/request"}


def _verb(answer: str) -> str:
    return {"agree": "agree to", "counter": "counter", "refuse": "refuse",
            "person": "leave to the person"}[answer]


def _expect_state(answer: Answer, status: int, state: str, event: str | None = None) -> str:
    doc = answer.document()
    wrong = []
    if answer.status != status:
        wrong.append(f"status {answer.status}, not {status}")
    if doc.get("state") != state:
        wrong.append(f"state {clean(doc.get('state'), 40)}, not {state}")
    if event is not None and doc.get("event") != event:
        wrong.append(f"event {clean(doc.get('event'), 40)}, not {event}")
    if wrong:
        raise Failed("; ".join(wrong) + f" (answer: {answer.describe()})")
    return f"{answer.status} {state}" + (f" ({event})" if event else "")


# -- the checks -----------------------------------------------------------------------------------


async def check_profile(run: AgentRun) -> str:
    url, webid = await run.agent_url()
    if webid is None:
        raise Skipped(f"given the agent's URL, not a WebID: {run.target} names no vrm:agent")
    return f"{webid} names the agent {url}"


async def check_discovery(run: AgentRun) -> str:
    doc = await run.discovery()
    return (f"acts for {node_id(doc, 'vrm:actsFor')}, signs with "
            f"{clean(node_id(doc, 'vrm:signingKey'), 40)}")


async def check_contexts(run: AgentRun) -> str:
    from vrm_agent.linkeddata.contexts import bundled_context

    doc = await run.needs("discovery", run._discovery, "the discovery document")
    listed = doc.get("vrm:protocolContext")
    urls = [node_id({"x": n}, "x") for n in (listed if isinstance(listed, list) else [listed])]
    if len([u for u in urls if u]) != 2:
        raise Failed("vrm:protocolContext does not list the two context copies")
    agent_url = (await run.agent_url())[0]
    protocol_copy = agent_url + "protocol/v1"
    if protocol_copy not in urls:
        raise Failed(f"vrm:protocolContext does not list {protocol_copy}")
    answer = await run.anonymous.send("GET", protocol_copy, auth=False)
    if answer.status != 200 or answer.json() != bundled_context(PROTOCOL_CONTEXT):
        raise Failed(f"{protocol_copy} is not the context of Appendix A "
                     f"(answer: {answer.describe()})")
    for url in urls:
        if url and url != protocol_copy:
            other = await run.anonymous.send("GET", url, auth=False)
            if other.status != 200 or not isinstance(other.document().get("@context"), dict):
                raise Failed(f"{url} is not a JSON-LD context (answer: {other.describe()})")
    return f"{len(urls)} contexts served; /protocol/v1 is Appendix A"


async def check_unauthenticated(run: AgentRun) -> str:
    endpoint = await run.endpoint()
    answer = await run.vendor.send("POST", endpoint, scenario_message(run.scenarios["refuse"]),
                                   auth=False)
    seen = expect_problem(answer, 401, "unauthenticated")
    if not answer.headers.get("www-authenticate", "").startswith("DPoP"):
        raise Failed("no WWW-Authenticate: DPoP header on the 401")
    return seen


async def check_bad_token(run: AgentRun) -> str:
    endpoint = await run.endpoint()
    answer = await run.vendor.send(
        "POST", endpoint, scenario_message(run.scenarios["refuse"]), auth=False,
        headers={"Authorization": "DPoP not.a.token", "DPoP": "not.a.proof"})
    return expect_problem(answer, 401, "unauthenticated")


async def check_wrong_htu(run: AgentRun) -> str:
    endpoint = await run.endpoint()
    headers = await run.vendor.auth_headers("POST", endpoint + "/elsewhere")
    answer = await run.vendor.send("POST", endpoint, b"{}", auth=False, headers=headers)
    return expect_problem(answer, 401, "unauthenticated")


async def check_replay(run: AgentRun) -> str:
    endpoint = await run.endpoint()
    headers = await run.vendor.auth_headers("POST", endpoint)
    # An empty object passes authentication and fails as a message: nothing is stored.
    first = await run.vendor.send("POST", endpoint, b"{}", auth=False, headers=headers)
    if first.status in (401, 403):
        raise Failed(f"a fresh proof was refused (answer: {first.describe()})")
    second = await run.vendor.send("POST", endpoint, b"{}", auth=False, headers=headers)
    return f"first {first.status}; replayed: " + expect_problem(second, 401, "unauthenticated")


async def check_agree(run: AgentRun) -> str:
    found = await run.negotiate("agree")
    return (f"asked {found.scenario.describe()}: 201 AGREED, "
            f"{len(granted_resources(found.document))} resource(s) until "
            f"{clean(_grants(found.document)[0].get('until'), 40)}")


async def _agreed(run: AgentRun) -> Negotiated:
    return await run.needs("scenario:agree", lambda: run._negotiate("agree"), "an agreement")


async def check_agreement_signed(run: AgentRun) -> str:
    from vrm_agent.integrity import IntegrityError, verify_proofs_async

    found = await _agreed(run)
    key = await run.signing_key()
    try:
        proofs = await verify_proofs_async(found.document["agreement"])
    except IntegrityError as exc:
        raise Failed(f"the agent's proof does not verify: {clean(exc, 200)}") from None
    if key not in {p.verification_method for p in proofs}:
        raise Failed("the agreement is not signed with the discovery document's vrm:signingKey")
    return f"{len(proofs)} proof(s) verify, one by vrm:signingKey"


async def check_agreed_reads(run: AgentRun) -> str:
    found = await _agreed(run)
    resources = granted_resources(found.document)[:MAX_READS]
    if not resources:
        raise Failed("the grant lists no resource URL")
    statuses = {url: await run.read(url) for url in resources}
    refused = [f"{u} {s}" for u, s in statuses.items() if s != 200]
    if refused:
        raise Failed("the pod refuses granted resources to the vendor: " + ", ".join(refused))
    return f"{len(resources)} granted resource(s) read: 200"


async def check_status(run: AgentRun) -> str:
    found = await _agreed(run)
    answer = await run.vendor.send("GET", found.url)
    seen = _expect_state(answer, 200, "AGREED")
    if answer.document().get("id") != found.url:
        raise Failed("the status document's id is not the negotiation's URL")
    return seen


def _tampered(agreement: Mapping[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(dict(agreement))
    changed["consideration"] = "changed by the vendor after signing"
    return changed


async def check_countersign_changed(run: AgentRun) -> str:
    from vrm_agent.integrity import add_proof

    found = await _agreed(run)
    signed = add_proof(_tampered(found.document["agreement"]), run.vendor_key)
    answer = await run.post(found.url, "ContractAgreementVerificationMessage", agreement=signed)
    return expect_problem(answer, 400, "agreement-mismatch")


async def check_countersign_bad_proof(run: AgentRun) -> str:
    from vrm_agent.integrity import add_proof

    found = await _agreed(run)
    agreement = found.document["agreement"]
    honest = add_proof(agreement, run.vendor_key)
    # A well-formed proof by the vendor's key, over another document: it does not verify here.
    foreign = add_proof(_tampered(agreement), run.vendor_key)["proof"][-1]
    honest["proof"][-1] = foreign
    answer = await run.post(found.url, "ContractAgreementVerificationMessage", agreement=honest)
    return expect_problem(answer, 400, "agreement-mismatch")


async def _countersigned(run: AgentRun) -> Answer:
    async def make() -> Answer:
        from vrm_agent.integrity import add_proof

        found = await _agreed(run)
        signed = add_proof(found.document["agreement"], run.vendor_key)
        return await run.post(found.url, "ContractAgreementVerificationMessage",
                              agreement=signed)
    return await run.once("countersigned", make)


async def check_countersign(run: AgentRun) -> str:
    from vrm_agent.integrity import IntegrityError, verify_proofs_async

    answer = await _countersigned(run)
    seen = _expect_state(answer, 200, "FINALIZED")
    agreement = answer.document().get("agreement")
    if not isinstance(agreement, dict):
        raise Failed("FINALIZED without the countersigned agreement")
    try:
        proofs = await verify_proofs_async(agreement)
    except IntegrityError as exc:
        raise Failed(f"the countersigned agreement does not verify: {clean(exc, 200)}") \
            from None
    signers = {p.verification_method for p in proofs}
    if run.vendor_key.verification_method not in signers or len(signers) < 2:
        raise Failed("the agreement sent back does not carry both parties' proofs")
    return seen + f"; {len(proofs)} proofs verify, the vendor's among them"


async def check_countersign_twice(run: AgentRun) -> str:
    from vrm_agent.integrity import add_proof

    first = await run.needs("countersigned", lambda: _countersigned(run), "a countersigned "
                            "agreement")
    if first.status != 200:
        raise Skipped("needs a countersigned agreement, which was not reached")
    found = await _agreed(run)
    signed = add_proof(found.document["agreement"], run.vendor_key)
    answer = await run.post(found.url, "ContractAgreementVerificationMessage", agreement=signed)
    return expect_problem(answer, 409, "not-allowed-in-state")


async def check_other_vendor(run: AgentRun) -> str:
    if run.other is None:
        raise Skipped("needs a second vendor: pass --other-vendor-config")
    url = await run.any_negotiation()
    answer = await run.other.send("GET", url)
    seen = expect_problem(answer, 404, "unknown-negotiation")
    ended = await run.other.send("POST", url + "/termination", {
        "@context": PROTOCOL_CONTEXT, "type": "ContractNegotiationTerminationMessage",
        "negotiation": url, "reason": ["not mine"]})
    expect_problem(ended, 404, "unknown-negotiation")
    return seen + "; its termination too"


async def check_unknown_negotiation(run: AgentRun) -> str:
    endpoint = await run.endpoint()
    answer = await run.vendor.send("GET", f"{endpoint}/{secrets.token_hex(8)}")
    return expect_problem(answer, 404, "unknown-negotiation")


async def check_wrong_method(run: AgentRun) -> str:
    endpoint = await run.endpoint()
    answer = await run.vendor.send("DELETE", endpoint)
    seen = expect_problem(answer, 405, "no-such-endpoint")
    if not answer.headers.get("allow"):
        raise Failed("the 405 has no Allow header")
    return seen + f"; Allow: {clean(answer.headers['allow'], 60)}"


async def check_unknown_path(run: AgentRun) -> str:
    url = await run.any_negotiation()
    answer = await run.vendor.send("POST", url + "/rejection", {"@context": PROTOCOL_CONTEXT})
    return expect_problem(answer, 404, "no-such-endpoint")


async def check_wrong_negotiation(run: AgentRun) -> str:
    url = await run.any_negotiation()
    endpoint = await run.endpoint()
    answer = await run.vendor.send("POST", url + "/termination", {
        "@context": PROTOCOL_CONTEXT, "type": "ContractNegotiationTerminationMessage",
        "negotiation": f"{endpoint}/{secrets.token_hex(8)}", "reason": ["elsewhere"]})
    return expect_problem(answer, 400, "wrong-negotiation")


async def check_unknown_event(run: AgentRun) -> str:
    url = await run.any_negotiation()
    answer = await run.post(url, "ContractNegotiationEventMessage", event="REJECTED")
    return expect_problem(answer, 400, "unknown-event")


async def _terminated_agreement(run: AgentRun) -> Answer:
    async def make() -> Answer:
        found = await _agreed(run)
        return await run.post(found.url, "ContractNegotiationTerminationMessage",
                              reason=["the conformance kit ends it"])
    return await run.once("terminated", make)


async def check_terminate(run: AgentRun) -> str:
    return _expect_state(await _terminated_agreement(run), 200, "TERMINATED", "terminated")


async def check_terminated_reads(run: AgentRun) -> str:
    answer = await run.needs("terminated", lambda: _terminated_agreement(run),
                             "a terminated agreement")
    if answer.status != 200:
        raise Skipped("needs an agreement the vendor ended, which was not reached")
    resources = granted_resources((await _agreed(run)).document)[:MAX_READS]
    statuses = {url: await run.read(url) for url in resources}
    open_ = [f"{u} {s}" for u, s in statuses.items() if s not in (401, 403, 404)]
    if open_:
        raise Failed("still readable after the vendor ended the agreement: " + ", ".join(open_))
    return f"{len(resources)} resource(s) now refused: " + ", ".join(
        sorted({str(s) for s in statuses.values()}))


async def check_terminate_again(run: AgentRun) -> str:
    answer = await run.needs("terminated", lambda: _terminated_agreement(run),
                             "a terminated agreement")
    if answer.status != 200:
        raise Skipped("needs an agreement the vendor ended, which was not reached")
    found = await _agreed(run)
    again = await run.post(found.url, "ContractNegotiationTerminationMessage", reason=["again"])
    return expect_problem(again, 409, "not-allowed-in-state")


async def check_refuse(run: AgentRun) -> str:
    found = await run.negotiate("refuse")
    reasons = found.document.get("reason")
    if not reasons:
        raise Failed("refused without a reason")
    return f"asked {found.scenario.describe()}: 201 TERMINATED (refused): " + clean(
        reasons[0] if isinstance(reasons, list) else reasons, 120)


async def check_counter(run: AgentRun) -> str:
    found = await run.negotiate("counter")
    return f"asked {found.scenario.describe()}: 201 OFFERED: " + clean(
        found.document.get("reason"), 160)


async def check_counter_accept(run: AgentRun) -> str:
    found = await run.needs("scenario:counter", lambda: run._negotiate("counter"),
                            "a counter-offer")
    answer = await run.post(found.url, "ContractNegotiationEventMessage", event="ACCEPTED")
    seen = _expect_state(answer, 200, "AGREED")
    doc = answer.document()
    if not isinstance(doc.get("agreement"), dict) or not granted_resources(doc):
        raise Failed("AGREED without the agreement and its grant")
    statuses = [await run.read(u) for u in granted_resources(doc)[:MAX_READS]]
    if any(s != 200 for s in statuses):
        raise Failed(f"the accepted offer's resources answer {statuses}, not 200")
    return seen + f"; {len(statuses)} resource(s) read: 200"


async def check_counter_request(run: AgentRun) -> str:
    scenario = run.scenarios["counter"]
    if scenario.skip:
        raise Skipped("the expectations say the terms answer no request by 'counter'")
    # A second offer of its own, answered with a counter-request.
    fresh = await run.negotiate_again("counter")
    message = scenario_message(run.scenarios["agree"])
    message["negotiation"] = fresh.url
    answer = await run.vendor.send("POST", fresh.url + "/request", message)
    doc = answer.document()
    if answer.status < 300:
        run.opened[fresh.url] = str(doc.get("state"))
    if answer.status not in (200, 202) or doc.get("state") not in (
            "AGREED", "OFFERED", "TERMINATED", "REQUESTED"):
        raise Failed(f"not an answer §7.3 allows (answer: {answer.describe()})")
    return f"countered with {run.scenarios['agree'].describe()}: {answer.status} {doc['state']}"


async def check_person(run: AgentRun) -> str:
    found = await run.negotiate("person")
    return f"asked {found.scenario.describe()}: 202 REQUESTED with status {found.url}"


async def _waiting(run: AgentRun) -> Negotiated:
    return await run.needs("scenario:person", lambda: run._negotiate("person"),
                           "a request left to the person")


async def check_person_status(run: AgentRun) -> str:
    found = await _waiting(run)
    answer = await run.vendor.send("GET", found.url)
    seen = _expect_state(answer, 200, "REQUESTED")
    if answer.document().get("status") != found.url:
        raise Failed("the status document of a waiting request has no status URL")
    return seen + " with status"


async def check_person_accept_early(run: AgentRun) -> str:
    found = await _waiting(run)
    answer = await run.post(found.url, "ContractNegotiationEventMessage", event="ACCEPTED")
    return expect_problem(answer, 409, "not-allowed-in-state")


async def check_person_withdraw(run: AgentRun) -> str:
    found = await _waiting(run)
    answer = await run.post(found.url, "ContractNegotiationTerminationMessage",
                            reason=["no longer needed"])
    return _expect_state(answer, 200, "TERMINATED", "terminated")


async def check_expiry(run: AgentRun) -> str:
    if not run.expiry:
        raise Skipped("expiry not checked (--no-expiry)")
    # Agreements of this run on the same resources would keep them readable past this end.
    await run.close_all()
    found = await run.negotiate("expiry")
    end = grant_end(found.document)
    if end is None:
        raise Failed("the grant's until cannot be read as a dateTime with a time zone")
    resources = granted_resources(found.document)[:MAX_READS]
    early = ""
    if (end - datetime.now(UTC)).total_seconds() > 1:
        statuses = [await run.read(u) for u in resources]
        if any(s != 200 for s in statuses):
            raise Failed(f"before its end the agreement's resources answer {statuses}")
        early = "200 before the end; "
    deadline = end.timestamp() + EXPIRY_GRACE_SECONDS
    while time.time() < end.timestamp():
        await asyncio.sleep(min(0.5, max(0.05, end.timestamp() - time.time())))
    closed_after: float | None = None
    while time.time() < deadline:
        statuses = [await run.read(u) for u in resources]
        if all(s in (401, 403, 404) for s in statuses):
            closed_after = time.time() - end.timestamp()
            break
        await asyncio.sleep(0.25)
    if closed_after is None:
        raise Failed(f"still readable {EXPIRY_GRACE_SECONDS:.0f} s after until "
                     f"({end:%H:%M:%S}), with no other agreement of this run in force")
    answer = await run.vendor.send("GET", found.url)
    while answer.document().get("state") != "TERMINATED" and time.time() < deadline:
        await asyncio.sleep(0.25)
        answer = await run.vendor.send("GET", found.url)
    run.opened[found.url] = str(answer.document().get("state"))
    seen = _expect_state(answer, 200, "TERMINATED", "expired")
    return f"{early}refused {closed_after:.1f} s after until; status {seen}"


def _bad_request_check(bad: BadRequest) -> Callable[[AgentRun], Awaitable[str]]:
    async def run_it(run: AgentRun) -> str:
        endpoint = await run.endpoint()
        base = scenario_message(run.scenarios["refuse"])
        answer = await run.vendor.send("POST", endpoint, bad_request_body(bad, base))
        doc = answer.document()
        if answer.status < 300 and isinstance(doc.get("id"), str):
            run.opened[doc["id"]] = str(doc.get("state"))  # wrongly taken: ended at the end
        return expect_problem(answer, bad.status, bad.slug)
    return run_it


CHECKS: tuple[Check[AgentRun], ...] = (
    Check("discovery-profile", "2", "the WebID profile names the agent (vrm:agent)",
          check_profile),
    Check("discovery-document", "2", "the discovery document: JSON-LD, actsFor the person, "
          "endpoint, protocol, signing key", check_discovery),
    Check("discovery-contexts", "2", "the protocol contexts are served, /protocol/v1 as in "
          "Appendix A", check_contexts),
    Check("auth-missing", "3.1", "a request without credentials: 401 unauthenticated, "
          "WWW-Authenticate", check_unauthenticated),
    Check("auth-bad-token", "3.1", "a token that is not a JWT is 401", check_bad_token),
    Check("auth-wrong-htu", "3.1", "a DPoP proof for another URL is 401", check_wrong_htu),
    Check("auth-replay", "3.1", "a DPoP proof used twice is 401 the second time", check_replay),
    Check("agree", "7.1", "a request the terms agree to: 201 AGREED, agreement and grant",
          check_agree),
    Check("agree-signed", "8", "the agreement's proof verifies, by vrm:signingKey",
          check_agreement_signed),
    Check("agree-read", "10", "the vendor reads each granted resource from the pod: 200",
          check_agreed_reads),
    Check("status", "7.2", "the status URL answers 200 with the state", check_status),
    Check("countersign-changed", "7.4", "a countersigned agreement that was changed: 400 "
          "agreement-mismatch", check_countersign_changed),
    Check("countersign-bad-proof", "7.4", "a vendor proof that does not verify: 400 "
          "agreement-mismatch", check_countersign_bad_proof),
    Check("countersign", "7.4", "countersigning: 200 FINALIZED, both proofs verify",
          check_countersign),
    Check("countersign-twice", "6", "countersigning again: 409 not-allowed-in-state",
          check_countersign_twice),
    Check("other-vendor", "3.1", "another vendor gets 404 for this vendor's negotiation",
          check_other_vendor),
    Check("terminate", "7.5", "the vendor ends the agreement: 200 TERMINATED (terminated)",
          check_terminate),
    Check("terminate-read", "10", "after the end the pod refuses the resources",
          check_terminated_reads),
    Check("terminate-again", "6", "ending an ended negotiation: 409 not-allowed-in-state",
          check_terminate_again),
    Check("refuse", "7.1", "a request the terms refuse: 201 TERMINATED (refused) with reasons",
          check_refuse),
    Check("counter", "7.3", "a request the terms narrow: 201 OFFERED with an odrl:Offer",
          check_counter),
    Check("counter-accept", "7.3", "accepting the offer: 200 AGREED, resources readable",
          check_counter_accept),
    Check("counter-request", "7.3", "answering an offer with a new request: 200 or 202",
          check_counter_request),
    Check("person", "9", "a request left to the person: 202 REQUESTED with a status URL",
          check_person),
    Check("person-status", "7.2", "polling a waiting request: 200 REQUESTED with status",
          check_person_status),
    Check("person-accept-early", "6", "accepting before the person decides: 409",
          check_person_accept_early),
    Check("person-withdraw", "7.5", "the vendor withdraws a waiting request: 200 TERMINATED",
          check_person_withdraw),
    Check("unknown-event", "7.3", "an event other than ACCEPTED: 400 unknown-event",
          check_unknown_event),
    Check("wrong-negotiation", "4.2", "a message naming another negotiation: 400 "
          "wrong-negotiation", check_wrong_negotiation),
    Check("unknown-negotiation", "7.2", "an unknown negotiation id: 404 unknown-negotiation",
          check_unknown_negotiation),
    Check("wrong-method", "11", "a method /negotiations does not take: 405 with Allow",
          check_wrong_method),
    Check("unknown-path", "11", "a path the protocol does not define: 404 no-such-endpoint",
          check_unknown_path),
    *(Check(bad.id, "11", f"{bad.what}: {bad.status} {bad.slug}", _bad_request_check(bad))
      for bad in BAD_REQUESTS),
    Check("expiry", "10", "a short agreement ends on time: then 403, TERMINATED (expired)",
          check_expiry),
)

__all__ = ["BAD_REQUESTS", "CHECKS", "PROBLEM_TYPES", "AgentRun", "BadRequest", "classify",
           "request_message"]
