"""W3C Linked Web Storage access requests and grants (the LWS editor's draft "Access Requests
and Grants", ODRL-based access profile), mapped onto the agent's own negotiation model.

Pure functions only: an LWS access request from outside is read strictly (one known context,
known terms only, every IRI absolute, every list bounded) into :class:`AccessRequest`, which
becomes an ODRL ``Request`` of the negotiation protocol, so the person's terms decide it through
the same core as any vendor's request. The answers (the request as the agent keeps it, the grant,
the container listings, the notifications) are built here from what the negotiation holds.
docs/lws-access-requests.md describes the choices where the draft leaves room.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from vrm_agent.errors import VrmAgentError
from vrm_agent.negotiation.durations import MAX_DURATION, MIN_REQUESTED, duration_text
from vrm_agent.negotiation.odrl import Constraint, Policy, Rule
from vrm_agent.negotiation.records import NegotiationRecord
from vrm_agent.negotiation.targets import TargetRefused, normalise_url

LWS_CONTEXT = "https://www.w3.org/ns/lws/v1"
LWS = "https://www.w3.org/ns/lws#"
ACCESS_PROFILE = LWS + "AccessProfile"
MEDIA_TYPE = "application/lws+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
VRMP = "https://w3id.org/vrm-agent/protocol#"
# What the agent's answers say beyond the draft's terms, defined inline so nothing is fetched.
EXTENSION_CONTEXT: dict[str, Any] = {
    "vrmp": VRMP,
    "status": "vrmp:lwsStatus",
    "reason": {"@id": "vrmp:reason", "@container": "@set"},
    "grant": {"@id": "vrmp:lwsGrant", "@type": "@id"},
    "request": {"@id": "vrmp:lwsRequest", "@type": "@id"},
}
ANSWER_CONTEXT: list[Any] = [LWS_CONTEXT, EXTENSION_CONTEXT]

TARGET_TYPES = {"StorageResource": LWS + "StorageResource", "DataResource": LWS + "DataResource",
                "Container": LWS + "Container"}
ACTIONS = ("read", "modify", "create", "delete")
GRANTED_ACTIONS = ("read",)  # the agent opens a pod for reading only, as for every agreement
OPERATORS: Mapping[str, tuple[str, ...]] = {
    "purpose": ("eq", "isAnyOf"),
    "dateTime": ("lteq", "lt", "gteq", "gt"),
    "client": ("eq", "isAnyOf"),
    "mediaType": ("eq", "isAnyOf"),
    "type": ("eq", "isAnyOf"),
}
REQUESTS_PATH = "lws/requests/"  # below the agent's URL: the AccessRequestService
GRANTS_PATH = "lws/grants/"  # the AccessGrantService
CONTEXT_PATH = "lws/v1"  # the agent's copy of the LWS context
MAX_POLICIES = 16  # access policies in one request
MAX_VALUES = 64  # target values in one policy
MAX_OPERANDS = 32  # right operands in one isAnyOf
MAX_CONSTRAINTS = 16
# Items (resource x purpose) in one request: each becomes part of the negotiation record the
# person keeps, and each is looked up in the pod, so a small body must not become a huge record.
MAX_ITEMS = 256
MAX_IRI = 2048
_ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/"
                         r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_DATE_TIME = re.compile(r"-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


class AccessRequestRefused(VrmAgentError):
    """An access request that is not read at all: 400, nothing kept; the text says why."""

    slug = "malformed-access-request"


class ActionNotGranted(AccessRequestRefused):
    slug = "action-not-granted"


@dataclass(frozen=True)
class AccessPolicy:
    """One ``access`` entry of a request, read and checked."""

    resources: tuple[str, ...]  # normalised URLs, as the pod server resolves them
    target_type: str  # the full IRI of the target matcher
    purposes: tuple[str, ...]
    end: datetime | None = None  # dateTime lteq / lt
    start: datetime | None = None  # dateTime gteq / gt
    clients: tuple[str, ...] = ()
    media_types: tuple[str, ...] = ()
    resource_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessRequest:
    storage: str
    assignee: str
    policies: tuple[AccessPolicy, ...]
    inbox: str | None = None

    @property
    def not_after(self) -> datetime | None:
        """The earliest end any policy names: no grant of this request lasts beyond it."""
        return min((p.end for p in self.policies if p.end is not None), default=None)


# -- reading ---------------------------------------------------------------------------------


def _refuse(text: str) -> AccessRequestRefused:
    return AccessRequestRefused(text)


def _only_keys(data: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise _refuse(f"{where} has {', '.join(repr(k)[:60] for k in unknown[:5])}, which this "
                      f"agent does not know (it reads {', '.join(allowed)})")


def _strings(value: Any, where: str, *, limit: int) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _refuse(f"{where} is empty")
    if len(items) > limit:
        raise _refuse(f"{where} has more than {limit} values")
    if not all(isinstance(i, str) and i for i in items):
        raise _refuse(f"{where} must hold strings")
    return tuple(items)


def _iri(value: str, where: str) -> str:
    if len(value) > MAX_IRI or not _ABSOLUTE_IRI.fullmatch(value):
        raise _refuse(f"{where}: {value[:80]!r} is not an absolute IRI (relative IRIs are not "
                      "resolved against anything)")
    return value


def _web_url(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _refuse(f"{where} must be a URL string")
    _iri(value, where)
    if not value.lower().startswith(("https://", "http://")):
        raise _refuse(f"{where}: {value[:80]!r} is not an http(s) URL")
    return value


def _types(value: Any, required: str, where: str) -> None:
    """A ``type`` member: must include ``required`` and nothing this agent does not know."""
    names = _strings(value, f"{where} type", limit=8)
    if required not in names and LWS + required not in names:
        raise _refuse(f"{where} type must include {required!r}")
    other = [n for n in names if n not in (required, LWS + required)]
    if other:
        raise _refuse(f"{where} type {other[0][:80]!r} is not one this agent knows")


def read_context(value: Any) -> None:
    """Only the LWS v1 context, by its IRI: no other context is ever read or fetched."""
    items = value if isinstance(value, list) else [value]
    if not items or any(item != LWS_CONTEXT for item in items):
        raise _refuse(f"'@context' must be {LWS_CONTEXT!r} (alone); this agent reads no other "
                      "context, inline or remote")


def _date_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64 or not _DATE_TIME.fullmatch(value):
        raise _refuse(f"{where} must be an xsd:dateTime with a time zone, such as "
                      "2026-06-09T10:00:00Z")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 or 9999 shifted past the calendar's edge
        raise _refuse(f"{where}: {value[:40]!r} is not a date and time") from None


def _constraint(data: Any, where: str) -> tuple[str, str, tuple[str, ...]]:
    if not isinstance(data, dict):
        raise _refuse(f"{where} must be an object")
    _only_keys(data, ("leftOperand", "operator", "rightOperand"), where)
    if not {"leftOperand", "operator", "rightOperand"} <= set(data):
        raise _refuse(f"{where} needs leftOperand, operator and rightOperand")
    left, operator, right = data["leftOperand"], data["operator"], data["rightOperand"]
    if not isinstance(left, str) or left not in OPERATORS:
        raise _refuse(f"{where}: the leftOperand {str(left)[:80]!r} is not one this agent "
                      f"can honour (it knows {', '.join(OPERATORS)})")
    if operator not in OPERATORS[left]:
        raise _refuse(f"{where}: {left} takes the operator {' or '.join(OPERATORS[left])}, "
                      f"not {str(operator)[:40]!r}")
    if operator == "isAnyOf":
        if not isinstance(right, list):
            raise _refuse(f"{where}: isAnyOf takes a list as rightOperand")
        values = _strings(right, f"{where} rightOperand", limit=MAX_OPERANDS)
    else:
        if not isinstance(right, str) or not right:
            raise _refuse(f"{where}: {operator} takes one string as rightOperand")
        values = (right,)
    return left, operator, values


def _policy(data: Any, where: str, *, caller: str, client_id: str | None,
            now: datetime | None) -> AccessPolicy:
    if not isinstance(data, dict):
        raise _refuse(f"{where} must be an object")
    _only_keys(data, ("type", "action", "assignee", "target", "constraint"), where)
    for needed in ("type", "action", "assignee", "target"):
        if needed not in data:
            raise _refuse(f"{where} needs {needed!r}" + (
                " (this agent grants named resources only)" if needed == "target" else ""))
    _types(data["type"], "AccessPolicy", where)
    actions = _strings(data["action"], f"{where} action", limit=len(ACTIONS))
    unknown = [a for a in actions if a not in ACTIONS]
    if unknown:
        raise _refuse(f"{where}: the action {unknown[0][:40]!r} is not one of "
                      f"{', '.join(ACTIONS)}")
    other = sorted({a for a in actions if a not in GRANTED_ACTIONS})
    if other:
        raise ActionNotGranted(
            f"{where}: this agent grants read access only, never {', '.join(other)}; ask for "
            "['read']")
    assignee = _web_url(data["assignee"], f"{where} assignee")
    if assignee != caller:
        raise _refuse(f"{where}: the assignee must be the WebID the request is sent with "
                      f"({caller}); a request asks for its sender only")
    resources, target_type = _target(data["target"], f"{where} target")
    constraints = data.get("constraint", [])
    if not isinstance(constraints, list) or len(constraints) > MAX_CONSTRAINTS:
        raise _refuse(f"{where} constraint must be a list of at most {MAX_CONSTRAINTS}")
    seen: dict[str, tuple[str, tuple[str, ...]]] = {}
    start = end = None
    for index, item in enumerate(constraints):
        left, operator, values = _constraint(item, f"{where} constraint {index + 1}")
        if left == "dateTime":
            moment = _date_time(values[0], f"{where} dateTime")
            if operator in ("lteq", "lt"):
                if end is not None:
                    raise _refuse(f"{where} names more than one end (dateTime lteq)")
                end = moment.replace(microsecond=0)  # never later than asked
            else:
                if start is not None:
                    raise _refuse(f"{where} names more than one start (dateTime gteq)")
                start = moment
            continue
        if left in seen:
            raise _refuse(f"{where} has two {left} constraints; use one, with isAnyOf for "
                          "several values")
        seen[left] = (operator, values)
    if "purpose" not in seen:
        raise _refuse(f"{where} needs a purpose constraint: the person's terms decide by purpose")
    purposes = tuple(_web_url(p, f"{where} purpose") for p in seen["purpose"][1])
    clients = tuple(_iri(c, f"{where} client") for c in seen.get("client", ("", ()))[1])
    if clients and now is not None and client_id not in clients:
        raise _refuse(f"{where}: the client constraint names {', '.join(clients)[:200]}, but "
                      f"this request comes from the client {client_id or '(none named)'}")
    media_types = tuple(seen.get("mediaType", ("", ()))[1])
    for media in media_types:
        if not _MEDIA_TYPE.fullmatch(media):
            raise _refuse(f"{where}: {media[:80]!r} is not a media type such as image/png")
    resource_types = tuple(_iri(t, f"{where} type constraint") for t in seen.get(
        "type", ("", ()))[1])
    if (media_types or resource_types) and any(r.endswith("/") for r in resources):
        raise _refuse(f"{where}: a mediaType or type constraint holds for single resources "
                      "only; a container's members cannot be held to it")
    if now is not None:
        if start is not None and start > now:
            raise _refuse(f"{where}: access starts when it is granted; a start in the future "
                          "(dateTime gteq) is not supported")
        if end is not None:
            left_over = end - now
            if left_over < MIN_REQUESTED + timedelta(seconds=1):
                raise _refuse(f"{where}: the end (dateTime lteq) must be at least two seconds "
                              "ahead")
            if left_over > MAX_DURATION:
                raise _refuse(f"{where}: the end (dateTime lteq) lies too far ahead")
    return AccessPolicy(resources, target_type, purposes, end, start, clients,
                        tuple(m.lower() for m in media_types), resource_types)


def _target(data: Any, where: str) -> tuple[tuple[str, ...], str]:
    if not isinstance(data, dict):
        raise _refuse(f"{where} must be an object with type and value")
    _only_keys(data, ("type", "value"), where)
    kind = data.get("type")
    full = TARGET_TYPES.get(kind) if isinstance(kind, str) else None
    if full is None and kind in TARGET_TYPES.values():
        full = str(kind)
    if full is None:
        raise _refuse(f"{where} type must be one of {', '.join(TARGET_TYPES)}")
    resources = []
    for value in _strings(data.get("value"), f"{where} value", limit=MAX_VALUES):
        url = _web_url(value, f"{where} value")
        try:
            url = normalise_url(url)
        except TargetRefused as exc:
            raise _refuse(f"{where} value {value[:80]!r}: {exc}") from None
        if full == LWS + "Container" and not url.endswith("/"):
            raise _refuse(f"{where}: {url[:80]} is not a container (its URL ends without '/')")
        if full == LWS + "DataResource" and url.endswith("/"):
            raise _refuse(f"{where}: {url[:80]} is a container, not a DataResource")
        if url not in resources:
            resources.append(url)
    return tuple(resources), full


def read_access_request(data: Any, *, caller: str, client_id: str | None, storage: str,
                        now: datetime | None) -> AccessRequest:
    """An LWS access request (parsed JSON) as the agent reads it, or AccessRequestRefused.

    ``now`` is None when reading one the agent accepted before: its times and client were
    checked when it came, against the clock and the caller's token of that moment."""
    if not isinstance(data, dict):
        raise _refuse("an access request is a JSON object")
    _only_keys(data, ("@context", "type", "storage", "inbox", "access"), "the request")
    for needed in ("@context", "type", "storage", "access"):
        if needed not in data:
            raise _refuse(f"the request needs {needed!r}")
    read_context(data["@context"])
    _types(data["type"], "AccessRequest", "the request")
    asked_storage = _web_url(data["storage"], "storage")
    try:
        same = normalise_url(asked_storage) == normalise_url(storage)
    except TargetRefused:
        same = False
    if not same:
        raise _refuse(f"storage must be the person's storage, {storage}")
    inbox = _web_url(data["inbox"], "inbox") if "inbox" in data else None
    access = data["access"]
    if not isinstance(access, list) or not access or len(access) > MAX_POLICIES:
        raise _refuse(f"access must be a list of 1 to {MAX_POLICIES} access policies")
    policies = tuple(_policy(p, f"access {i + 1}", caller=caller, client_id=client_id, now=now)
                     for i, p in enumerate(access))
    items = sum(len(p.resources) * len(p.purposes) for p in policies)
    if items > MAX_ITEMS:
        raise _refuse(f"the request asks for {items} resource and purpose pairs; at most "
                      f"{MAX_ITEMS} in one request")
    return AccessRequest(storage, caller, policies, inbox)


# -- into the negotiation model ----------------------------------------------------------------


def internal_request(request: AccessRequest, *, uid: str, now: datetime) -> Policy:
    """The ODRL Request the person's terms judge: read, on each resource, for each purpose
    (one permission per purpose, as the protocol asks), for the time up to the request's end."""
    rules = []
    for policy in request.policies:
        constraints_base: list[Constraint] = []
        if policy.end is not None:
            seconds = math.floor((policy.end - now).total_seconds())
            constraints_base.append(Constraint("elapsedTime", "eq",
                                               duration_text(timedelta(seconds=seconds))))
        for purpose in policy.purposes:
            rules.append(Rule("permission", "read", policy.resources,
                              (Constraint("purpose", "eq", purpose), *constraints_base)))
    return Policy(uid, "Request", tuple(rules))


def stored_form(request: AccessRequest) -> str:
    """The request as the agent keeps it with the negotiation (and shows it back)."""
    return json.dumps(request_document(request), sort_keys=True)


def from_stored(text: str, *, storage: str) -> AccessRequest:
    """A kept request read back; AccessRequestRefused when the pod copy is not one."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        raise _refuse("the kept access request is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("access"), list) or not \
            data["access"] or not isinstance(data["access"][0], dict):
        raise _refuse("the kept access request has no access policy")
    caller = data["access"][0].get("assignee")
    return read_access_request(data, caller=str(caller), client_id=None, storage=storage,
                               now=None)


# -- what the agent answers --------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _short_type(full: str) -> str:
    return full[len(LWS):] if full.startswith(LWS) else full


def _one_or_any(left: str, values: Sequence[str]) -> dict[str, Any]:
    if len(values) == 1:
        return {"leftOperand": left, "operator": "eq", "rightOperand": values[0]}
    return {"leftOperand": left, "operator": "isAnyOf", "rightOperand": list(values)}


def policy_document(policy: AccessPolicy, assignee: str, *, resources: Sequence[str] | None =
                    None, end: datetime | None = None, start: datetime | None = None
                    ) -> dict[str, Any]:
    constraints = [_one_or_any("purpose", policy.purposes)]
    if start is not None:
        constraints.append({"leftOperand": "dateTime", "operator": "gteq",
                            "rightOperand": _iso(start)})
    if end is not None:
        constraints.append({"leftOperand": "dateTime", "operator": "lteq",
                            "rightOperand": _iso(end)})
    for left, values in (("client", policy.clients), ("mediaType", policy.media_types),
                         ("type", policy.resource_types)):
        if values:
            constraints.append(_one_or_any(left, values))
    return {"type": ["AccessPolicy"], "action": list(GRANTED_ACTIONS), "assignee": assignee,
            "target": {"type": _short_type(policy.target_type),
                       "value": list(policy.resources if resources is None else resources)},
            "constraint": constraints}


def request_document(request: AccessRequest) -> dict[str, Any]:
    out: dict[str, Any] = {"@context": [LWS_CONTEXT], "type": ["AccessRequest"],
                           "storage": request.storage}
    if request.inbox:
        out["inbox"] = request.inbox
    out["access"] = [policy_document(p, request.assignee, end=p.end, start=p.start)
                     for p in request.policies]
    return out


@dataclass(frozen=True)
class Granted:
    """Pod resources opened by the request's grant, until an end (GrantedAccess, as plain data)."""

    resources: tuple[str, ...]
    until: datetime


def grant_document(request: AccessRequest, granted: Sequence[Granted], *, url: str,
                   request_url: str) -> dict[str, Any]:
    """The AccessGrant: per access policy of the request, the resources opened and their end."""
    access = []
    for policy in request.policies:
        ends = {r: g.until for g in granted for r in g.resources}
        opened = [r for r in policy.resources if r in ends]
        if opened:
            access.append(policy_document(policy, request.assignee, resources=opened,
                                          end=max(ends[r] for r in opened)))
    return {"@context": ANSWER_CONTEXT, "id": url, "type": ["AccessGrant"],
            "storage": request.storage, "access": access, "request": request_url}


def request_answer(request: AccessRequest, *, url: str, status: str, reasons: Sequence[str],
                   grant_url: str | None) -> dict[str, Any]:
    out = {"@context": ANSWER_CONTEXT, "id": url, **request_document(request),
           "status": status}
    out["@context"] = ANSWER_CONTEXT
    if grant_url:
        out["grant"] = grant_url
    if reasons:
        out["reason"] = list(reasons)
    return out


def container_document(url: str, members: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A listing of the caller's requests or grants, as an LWS container: (url, type) each."""
    return {"@context": [LWS_CONTEXT], "id": url, "type": ["Container"],
            "totalItems": len(members),
            "items": [{"id": member, "type": [kind]} for member, kind in members]}


STATUS_OF_END = {"refused": "refused", "revoked": "revoked", "expired": "expired",
                 "replaced": "replaced", "terminated": "withdrawn"}


def notification(*, storage: str, activity_id: str, kind: str, object_url: str,
                 object_type: str, actor: str, published: datetime,
                 summary: str | None = None) -> dict[str, Any]:
    """An LWS notification (Activity Streams 2.0 activity in the LWS envelope)."""
    activity: dict[str, Any] = {"id": activity_id, "type": [kind],
                                "object": {"id": object_url, "type": [object_type]},
                                "actor": actor, "published": _iso(published)}
    if summary:
        activity["summary"] = summary
    return {"@context": [LWS_CONTEXT, AS_CONTEXT], "type": "Notification", "storage": storage,
            "activity": activity}


def resource_meets(policy: AccessPolicy, url: str, media_type: str,
                   link_types: Sequence[str]) -> bool:
    """Whether one resource, as the pod describes it, meets the policy's mediaType and type
    constraints. The pod server names LDP types; the LWS ones follow from the URL."""
    if policy.media_types and media_type.lower() not in policy.media_types:
        return False
    if policy.resource_types:
        types = {*link_types, LWS + ("Container" if url.endswith("/") else "DataResource")}
        if not types & set(policy.resource_types):
            return False
    return True


def request_url(agent_url: str, record_id: str) -> str:
    return f"{agent_url.rstrip('/')}/{REQUESTS_PATH}{record_id}"


def grant_url(agent_url: str, record_id: str) -> str:
    return f"{agent_url.rstrip('/')}/{GRANTS_PATH}{record_id}"


def lws_notice(record: NegotiationRecord, message_type: str, event: str | None, *,
               agent_url: str, storage: str, owner: str, now: datetime) -> dict[str, Any]:
    """The LWS notification for a step of a negotiation that came as an access request:
    a grant made (Create), a request refused (Reject), a grant ended (Delete). The URLs are
    those of the agent that took the request (a command may not know where it runs)."""
    suffix = f"negotiations/{record.id}"
    if record.url.endswith(suffix):
        agent_url = record.url[:-len(suffix)]
    if message_type == "ContractAgreementMessage":
        kind, url, what = "Create", grant_url(agent_url, record.id), "AccessGrant"
    elif event == "refused" or record.agreement is None:
        kind, url, what = "Reject", request_url(agent_url, record.id), "AccessRequest"
    else:
        kind, url, what = "Delete", grant_url(agent_url, record.id), "AccessGrant"
    summary = "; ".join(record.reasons[-1:]) if kind != "Create" else None
    return notification(storage=storage, activity_id=f"{request_url(agent_url, record.id)}"
                        f"#{kind.lower()}-{int(now.timestamp())}", kind=kind, object_url=url,
                        object_type=what, actor=owner, published=now, summary=summary)


# -- discovery -------------------------------------------------------------------------------

DESCRIPTION_PATH = "lws/description"  # the agent's storage-description-shaped document
SERVICES = (("AccessRequestService", REQUESTS_PATH, "access-requests"),
            ("AccessGrantService", GRANTS_PATH, "access-grants"))


def service_entries(agent_url: str) -> list[dict[str, Any]]:
    """The two services, as the draft's storage description lists them."""
    base = agent_url.rstrip("/") + "/"
    return [{"id": f"{base}{DESCRIPTION_PATH}#{fragment}", "type": kind,
             "serviceEndpoint": base + path, "conformsTo": [ACCESS_PROFILE]}
            for kind, path, fragment in SERVICES]


def description_document(agent_url: str, storage: str) -> dict[str, Any]:
    base = agent_url.rstrip("/") + "/"
    return {"@context": LWS_CONTEXT, "id": storage, "type": "Storage",
            "service": [*service_entries(agent_url),
                        {"type": "StorageDescription",
                         "serviceEndpoint": base + DESCRIPTION_PATH}]}


def context_document() -> dict[str, Any]:
    """The agent's copy of the LWS v1 context (docs/lws-access-requests.md says what it holds)."""
    from importlib.resources import files

    text = files("vrm_agent").joinpath("negotiation", "contexts", "lws-v1.jsonld").read_text(
        encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document
