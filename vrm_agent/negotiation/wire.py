"""Negotiation messages on the wire: ODRL 2.2 policies in JSON-LD, in a small protocol envelope.

Incoming messages are expanded and compacted again against the protocol context with pyld, so a
vendor may send any equivalent JSON-LD (full IRIs, other term names, the ODRL context). Only the
contexts the package ships are ever loaded (vrm_agent.linkeddata); any other context is refused,
as is a body that is too large, nested too deeply, not JSON, or lacks what its message type
needs. Outgoing messages use the protocol
context as it is, so they read like the examples in docs/protocol.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rdflib import RDF, Graph, Namespace, URIRef

from vrm_agent.errors import VrmAgentError
from vrm_agent.linkeddata.contexts import PROTOCOL_CONTEXT, bundled_context, refusal_in
from vrm_agent.linkeddata.limits import DOCUMENT, MESSAGE, InputRefused, load_json
from vrm_agent.linkeddata.rdf import jsonld_problem, jsonld_to_graph
from vrm_agent.negotiation.durations import requested_duration
from vrm_agent.negotiation.odrl import (
    CONFLICTS,
    ODRL,
    OPERATORS,
    POLICY_TYPES,
    Constraint,
    Policy,
    Rule,
    is_action,
)

CONTEXT_DOCUMENT: dict[str, Any] = bundled_context(PROTOCOL_CONTEXT)
PREFIXES = {k: v for k, v in CONTEXT_DOCUMENT["@context"].items()
            if isinstance(v, str) and v.endswith(("#", "/"))}
MAX_MESSAGE_BYTES = MESSAGE.max_bytes
MAX_IRI_LENGTH = 2048
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")
ODRL_NS = Namespace("http://www.w3.org/ns/odrl/2/")
MESSAGE_TYPES = ("ContractRequestMessage", "ContractOfferMessage", "ContractAgreementMessage",
                 "ContractNegotiationEventMessage", "ContractAgreementVerificationMessage",
                 "ContractNegotiationTerminationMessage",
                 # Change of address (docs/protocol.md §16)
                 "DataChangedMessage", "ChannelRegistrationMessage", "DataReadMessage")


class MalformedMessage(VrmAgentError):
    """A negotiation message that cannot be accepted; the text says what is wrong."""


@dataclass(frozen=True)
class Message:
    type: str
    policy: Policy | None = None
    negotiation: str | None = None
    callback: str | None = None
    consideration: str | None = None
    reasons: tuple[str, ...] = ()
    state: str | None = None
    document: Mapping[str, Any] | None = None  # the compacted message, proofs included


def full_iri(value: str) -> str:
    prefix, sep, rest = value.partition(":")
    if sep and prefix in PREFIXES and not rest.startswith("//"):
        return PREFIXES[prefix] + rest
    return value


def compact_iri(value: str) -> str:
    for prefix, namespace in PREFIXES.items():
        if prefix in ("dpv", "pd", "xsd") and value.startswith(namespace):
            return f"{prefix}:{value[len(namespace):]}"
    return value


# -- writing -----------------------------------------------------------------------------------


def _right_json(constraint: Constraint) -> Any:
    def one(value: str) -> Any:
        if constraint.left == "elapsedTime":
            return {"@value": value, "@type": "xsd:duration"}
        if constraint.left == "dateTime":
            return {"@value": value, "@type": "xsd:dateTime"}
        return {"id": compact_iri(value)}

    values = constraint.values()
    return [one(v) for v in values] if isinstance(constraint.right, tuple) else one(values[0])


def rule_json(rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {"action": rule.action}
    if rule.targets:
        out["target"] = [compact_iri(t) for t in rule.targets]
    if rule.constraints:
        out["constraint"] = [{"leftOperand": c.left, "operator": c.operator,
                              "rightOperand": _right_json(c)} for c in rule.constraints]
    if rule.duties:
        out["duty"] = [rule_json(d) for d in rule.duties]
    return out


def policy_json(policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": policy.uid, "type": policy.type}
    if policy.title:
        out["title"] = policy.title
    if policy.assigner:
        out["assigner"] = policy.assigner
    if policy.assignee:
        out["assignee"] = policy.assignee
    if policy.conflict != "prohibit" or policy.type == "Set":
        out["conflict"] = policy.conflict
    for kind in ("permission", "prohibition", "obligation"):
        rules = policy.of_kind(kind)
        if rules:
            out[kind] = [rule_json(r) for r in rules]
    if policy.consideration:
        out["consideration"] = policy.consideration
    return out


def message_json(message_type: str, **fields: Any) -> dict[str, Any]:
    """An outgoing message: the envelope, with any Policy turned into its JSON-LD form."""
    out: dict[str, Any] = {"@context": PROTOCOL_CONTEXT, "type": message_type}
    for key, value in fields.items():
        if value is None or value == () or value == []:
            continue
        out[key] = policy_json(value) if isinstance(value, Policy) else value
    return out


# -- reading -----------------------------------------------------------------------------------


def _refused(error: BaseException) -> MalformedMessage:
    from vrm_agent.linkeddata.loader import jsonld  # loaded already: the error came from it

    refused = refusal_in(error)
    if refused is not None:
        return MalformedMessage(str(refused))
    if isinstance(error, jsonld.JsonLdError):
        return MalformedMessage(f"not valid JSON-LD: {jsonld_problem(error)}")
    # pyld lets some malformed input through as plain Python errors; their text is not ours.
    return MalformedMessage("not valid JSON-LD (an IRI, a context or a value cannot be read)")


def normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Any JSON-LD form of a message, compacted against the protocol context."""
    # pyld is imported on the first message, not with this module (vrm_agent.linkeddata.loader).
    from vrm_agent.linkeddata.loader import jsonld, load_document

    try:
        # No base: a relative IRI stays relative and is refused below (docs/protocol.md §4.3),
        # where pyld would otherwise resolve it against a default base of its own.
        expanded = jsonld.expand(dict(data), {"documentLoader": load_document, "base": None})
        compacted = jsonld.compact(expanded, {"@context": CONTEXT_DOCUMENT["@context"]},
                                   {"documentLoader": load_document, "base": None})
    except (jsonld.JsonLdError, InputRefused, RecursionError, ValueError, TypeError, KeyError,
            AttributeError, IndexError) as exc:
        raise _refused(exc) from exc
    if "@graph" in compacted:
        graph = compacted["@graph"]
        nodes = [n for n in (graph if isinstance(graph, list) else [graph])
                 if isinstance(n, dict) and _one(n.get("type")) in MESSAGE_TYPES]
        if len(nodes) != 1:
            raise MalformedMessage("the body must hold exactly one message")
        compacted = nodes[0]
    compacted.pop("@context", None)
    return compacted


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _iri_of(value: Any) -> str:
    value = _one(value)
    if isinstance(value, dict):
        value = value.get("id", value.get("@id"))
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"expected an IRI, got {value!r}")
    return absolute_iri(full_iri(value))


def absolute_iri(value: str) -> str:
    """The value if it is an absolute IRI that RDF can hold (no spaces, no ``<>"{}|\\^```):
    every IRI in a message may end up in an access-control document or a Turtle record."""
    if len(value) > MAX_IRI_LENGTH or not _ABSOLUTE_IRI.fullmatch(value):
        raise MalformedMessage(f"{value[:80]!r} is not an absolute IRI")
    return value


def _right(value: Any) -> str | tuple[str, ...]:
    def one(item: Any) -> str:
        if isinstance(item, dict):
            if "id" in item or "@id" in item:
                return full_iri(str(item.get("id", item.get("@id"))))
            if "@value" in item:
                return str(item["@value"])
        if isinstance(item, str | int | float):
            return full_iri(str(item))
        raise MalformedMessage(f"a rightOperand cannot be {item!r}")

    if isinstance(value, list):
        if not value:
            raise MalformedMessage("a constraint has an empty rightOperand")
        return one(value[0]) if len(value) == 1 else tuple(one(v) for v in value)
    return one(value)


def _term(value: Any, allowed: Sequence[str], what: str) -> str:
    value = _one(value)
    if isinstance(value, dict):
        value = value.get("id", value.get("@id"))
    if value not in allowed:
        raise MalformedMessage(f"unknown {what} {value!r} (known: {', '.join(allowed)})")
    return str(value)


def _action(value: Any) -> str:
    value = _one(value)
    if isinstance(value, dict):
        value = value.get("id", value.get("@id"))
    if isinstance(value, str):
        value = full_iri(value)  # odrl:give as well as give
    if not isinstance(value, str) or len(value) > MAX_IRI_LENGTH or not is_action(value):
        raise MalformedMessage(f"unknown action {str(value)[:80]!r} (an ODRL 2.2 action "
                               "such as use, read, display, distribute, delete)")
    return value[len(ODRL):] if value.startswith(ODRL) else value


def _rule(data: Any, kind: str) -> Rule:
    if not isinstance(data, dict):
        raise MalformedMessage(f"a {kind} must be an object")
    if "action" not in data:
        raise MalformedMessage(f"a {kind} needs an action")
    action = _action(data["action"])
    targets = tuple(_iri_of(t) for t in data.get("target", []))
    constraints = []
    for item in data.get("constraint", []):
        if not isinstance(item, dict) or not {"leftOperand", "operator", "rightOperand"} <= set(
                item):
            raise MalformedMessage("a constraint needs leftOperand, operator and rightOperand")
        left = _one(item["leftOperand"])
        left = left.get("id") if isinstance(left, dict) else left
        constraints.append(Constraint(str(left), _term(item["operator"], OPERATORS, "operator"),
                                      _right(item["rightOperand"])))
    duties = tuple(_rule(d, "duty") for d in data.get("duty", []))
    return Rule(kind, action, targets, tuple(constraints), duties)


def policy_from_json(data: Any) -> Policy:
    if not isinstance(data, dict):
        raise MalformedMessage("a policy must be an object")
    uid = data.get("uid", data.get("id"))
    if not isinstance(uid, str) or not uid:
        raise MalformedMessage("a policy needs a uid")
    policy_type = _term(data.get("type"), POLICY_TYPES, "policy type")
    rules = [_rule(r, kind) for kind in ("permission", "prohibition", "obligation")
             for r in data.get(kind, [])]
    conflict = data.get("conflict", "prohibit")
    conflict = _term(conflict, CONFLICTS, "conflict strategy")
    assigner, assignee = data.get("assigner"), data.get("assignee")
    return Policy(full_iri(uid), policy_type, tuple(rules),
                  _iri_of(assigner) if assigner else None,
                  _iri_of(assignee) if assignee else None, conflict,
                  _one(data.get("title")) if isinstance(_one(data.get("title")), str) else None,
                  str(_one(data["consideration"])) if data.get("consideration") else None)


def load_message_json(body: bytes | str, *, limit: int = MAX_MESSAGE_BYTES) -> Any:
    """The body as JSON, within the message bounds (size, depth, nodes, valid Unicode)."""
    bounds = MESSAGE if limit == MESSAGE.max_bytes else replace(MESSAGE, max_bytes=limit)
    try:
        return load_json(body, bounds)
    except InputRefused as exc:
        raise MalformedMessage(str(exc)) from exc


def parse_message(body: bytes | str, *, limit: int = MAX_MESSAGE_BYTES) -> Message:
    data = load_message_json(body, limit=limit)
    if not isinstance(data, dict) or ("@context" not in data and not _only_full_iris(data)):
        raise MalformedMessage(f"a message is a JSON-LD object with an @context (use "
                               f"{PROTOCOL_CONTEXT}), or one whose keys are all full IRIs")
    compacted = normalise(data)
    try:
        return _interpret(data, compacted)
    except MalformedMessage:
        raise
    except (TypeError, AttributeError, KeyError, ValueError, IndexError, RecursionError) as exc:
        # A shape the checks above did not foresee (a list where an object belongs, say).
        raise MalformedMessage("the message's structure cannot be read as a "
                               "negotiation message") from exc


def _only_full_iris(value: Any) -> bool:
    """Whether every key in the JSON is a JSON-LD keyword or an absolute IRI: without a context,
    any other key would be dropped silently by expansion, and the message read as less than
    the vendor wrote."""
    if isinstance(value, list):
        return all(_only_full_iris(v) for v in value)
    if isinstance(value, dict):
        return all((k.startswith("@") or _ABSOLUTE_IRI.fullmatch(k) is not None)
                   and _only_full_iris(v) for k, v in value.items())
    return True


def _interpret(data: dict[str, Any], compacted: dict[str, Any]) -> Message:
    message_type = _term(compacted.get("type"), MESSAGE_TYPES, "message type")
    policy = policy_from_json(compacted["policy"]) if "policy" in compacted else None
    if message_type in ("ContractRequestMessage", "ContractOfferMessage") and policy is None:
        raise MalformedMessage(f"a {message_type} needs a policy")
    if message_type in ("ContractAgreementMessage", "ContractAgreementVerificationMessage") \
            and not isinstance(data.get("agreement"), dict):
        raise MalformedMessage(f"a {message_type} carries the signed agreement document, "
                               "with its own @context, as 'agreement'")
    if message_type == "ContractRequestMessage":
        assert policy is not None
        if policy.type != "Request":
            raise MalformedMessage("a ContractRequestMessage carries an odrl:Request")
        if not _ABSOLUTE_IRI.fullmatch(policy.uid):
            raise MalformedMessage(f"the request's uid must be an absolute IRI (a urn:uuid, "
                                   f"say), not {policy.uid!r}")
        if not policy.permissions:
            raise MalformedMessage("a request needs at least one permission")
        for rule in policy.permissions:
            if not rule.targets:
                raise MalformedMessage("every requested permission needs a target")
            purposes = [c for c in rule.constraints if c.left == "purpose"]
            if len(purposes) != 1:
                raise MalformedMessage("every requested permission needs exactly one purpose "
                                       "constraint (ask for each purpose separately)")
            purpose = purposes[0]
            if purpose.operator != "eq" or len(purpose.values()) != 1:
                raise MalformedMessage("a requested purpose is one DPV purpose IRI with the "
                                       "operator eq")
            value = absolute_iri(str(purpose.values()[0]))
            if not value.startswith(("https://", "http://")):
                raise MalformedMessage(f"the purpose {value[:80]!r} is not an http(s) IRI "
                                       "(dpv:ServiceProvision, say, with the protocol context)")
            if len([c for c in rule.constraints if c.left == "elapsedTime"]) > 1:
                raise MalformedMessage("a requested permission states elapsedTime at most once")
            elapsed = rule.constraint("elapsedTime")
            if elapsed is not None:
                try:
                    requested_duration(str(elapsed.values()[0]))
                except ValueError as exc:
                    raise MalformedMessage(f"elapsedTime: {exc}") from exc
    reasons = compacted.get("reason", [])
    return Message(
        message_type, policy,
        _iri_of(compacted["negotiation"]) if compacted.get("negotiation") else None,
        _iri_of(compacted["callbackAddress"]) if compacted.get("callbackAddress") else None,
        str(_one(compacted["consideration"])) if compacted.get("consideration") else None,
        tuple(str(r) for r in (reasons if isinstance(reasons, list) else [reasons])),
        str(_one(compacted["state"])) if compacted.get("state") else None,
        compacted,
    )


# -- RDF, for keeping policies in the pod --------------------------------------------------------


def policy_graph(policy: Policy, *, extra_types: Sequence[str] = ()) -> Graph:
    """The policy as RDF (with ``odrl:uid`` stated, as stored records carry it)."""
    document = {"@context": CONTEXT_DOCUMENT["@context"], **policy_json(policy)}
    graph = jsonld_to_graph(json.dumps(document), bounds=DOCUMENT)
    node = URIRef(policy.uid)
    graph.add((node, ODRL_NS.uid, node))
    for extra in extra_types:
        graph.add((node, RDF.type, URIRef(extra)))
    return graph
