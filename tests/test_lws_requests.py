"""Reading LWS access requests and mapping them onto the negotiation model: pure, no pod."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vrm_agent.negotiation import lws
from vrm_agent.negotiation.odrl import asks_of

STORAGE = "https://pod.example/carol/"
CALLER = "https://pod.example/acme/profile/card#me"
NOW = datetime(2026, 12, 2, 10, 0, 0, 500_000, tzinfo=UTC)
DPV = "https://w3id.org/dpv#"


def request(**policy_changes: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "type": ["AccessPolicy"], "action": ["read"], "assignee": CALLER,
        "target": {"type": "StorageResource", "value": [STORAGE + "shared/notes"]},
        "constraint": [{"leftOperand": "purpose", "operator": "eq",
                        "rightOperand": DPV + "ServiceProvision"}]}
    policy.update(policy_changes)
    return {"@context": ["https://www.w3.org/ns/lws/v1"], "type": ["AccessRequest"],
            "storage": STORAGE, "access": [policy]}


def read(data: Any, client: str | None = None) -> lws.AccessRequest:
    return lws.read_access_request(data, caller=CALLER, client_id=client, storage=STORAGE,
                                   now=NOW)


def with_constraints(*extra: dict[str, Any]) -> dict[str, Any]:
    data = request()
    data["access"][0]["constraint"] += list(extra)
    return data


def test_each_purpose_of_any_of_is_an_item_and_the_end_a_whole_second_duration() -> None:
    data = request(constraint=[
        {"leftOperand": "purpose", "operator": "isAnyOf",
         "rightOperand": [DPV + "ServiceProvision", DPV + "DeliveryOfGoods"]},
        {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2026-12-02T10:00:10.9Z"}])
    asked = read(data)
    assert asked.not_after == datetime(2026, 12, 2, 10, 0, 10, tzinfo=UTC)  # rounded down
    items = asks_of(lws.internal_request(asked, uid="urn:uuid:x", now=NOW))
    assert sorted(i.purpose or "" for i in items) == [DPV + "DeliveryOfGoods",
                                                       DPV + "ServiceProvision"]
    # 9.5 s are left: nine whole seconds, so the grant cannot end after the asked end.
    assert {i.duration for i in items} == {timedelta(seconds=9)}
    assert {i.action for i in items} == {"read"}


def test_a_kept_request_reads_back_as_it_was() -> None:
    asked = read(with_constraints(
        {"leftOperand": "mediaType", "operator": "eq", "rightOperand": "Text/Turtle"},
        {"leftOperand": "client", "operator": "eq", "rightOperand": "https://app.example/id"}),
        client="https://app.example/id")
    assert lws.from_stored(lws.stored_form(asked), storage=STORAGE) == asked
    assert asked.policies[0].media_types == ("text/turtle",)


@pytest.mark.parametrize(("change", "words"), [
    ({"@context": "https://www.w3.org/ns/lws/v1#"}, "@context"),
    ({"@context": ["https://www.w3.org/ns/lws/v1", "https://evil.example/ctx"]}, "@context"),
    ({"type": ["AccessRequest", "Other"]}, "not one this agent knows"),
    ({"storage": "https://pod.example/bolt/"}, "person's storage"),
    ({"inbox": "/inbox"}, "absolute IRI"),
    ({"id": "https://x.example/1"}, "does not know"),
    ({"access": []}, "1 to 16"),
])
def test_the_envelope_is_read_strictly(change: dict[str, Any], words: str) -> None:
    with pytest.raises(lws.AccessRequestRefused, match=words):
        read({**request(), **change})


@pytest.mark.parametrize(("policy", "words"), [
    ({"action": ["read", "delete"]}, "read access only"),
    ({"action": ["play"]}, "not one of"),
    ({"assignee": "http://xmlns.com/foaf/0.1/Agent"}, "assignee"),
    ({"target": {"type": "Container", "value": [STORAGE + "shared/notes"]}}, "not a container"),
    ({"target": {"type": "DataResource", "value": [STORAGE + "shared/"]}}, "is a container"),
    ({"target": {"type": "Everything", "value": [STORAGE]}}, "type must be"),
    ({"target": {"type": "DataResource", "value": ["notes"]}}, "absolute IRI"),
    ({"target": {"type": "DataResource", "value": [STORAGE + "a?b=1"]}}, "query"),
    ({"target": {"type": "StorageResource", "value": [STORAGE + f"r{i}" for i in range(65)]}},
     "more than 64"),
    ({"constraint": []}, "purpose"),
])
def test_policies_are_read_strictly(policy: dict[str, Any], words: str) -> None:
    with pytest.raises(lws.AccessRequestRefused, match=words):
        read(request(**policy))


@pytest.mark.parametrize(("constraint", "words"), [
    ({"leftOperand": "spatial", "operator": "eq", "rightOperand": "x"}, "leftOperand"),
    ({"leftOperand": "purpose", "operator": "eq", "rightOperand": DPV + "Marketing"},
     "two purpose"),
    ({"leftOperand": "dateTime", "operator": "eq", "rightOperand": "2026-12-03T00:00:00Z"},
     "operator"),
    ({"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2026-12-03"}, "time zone"),
    ({"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2026-12-02T10:00:01Z"},
     "two seconds"),
    ({"leftOperand": "dateTime", "operator": "gteq", "rightOperand": "2026-12-05T00:00:00Z"},
     "future"),
    ({"leftOperand": "client", "operator": "eq", "rightOperand": "https://other.example/app"},
     "comes from the client"),
    ({"leftOperand": "mediaType", "operator": "eq", "rightOperand": "not a type"},
     "media type"),
    ({"leftOperand": "type", "operator": "isAnyOf", "rightOperand": "x:y"}, "list"),
    ({"leftOperand": "purpose", "operator": "eq"}, "needs leftOperand"),
    # Shapes and values that once raised past the checks (a 500).
    ({"leftOperand": ["purpose"], "operator": "eq", "rightOperand": DPV + "X"}, "not one"),
    ({"leftOperand": "dateTime", "operator": "lteq",
      "rightOperand": "9999-12-31T23:59:59-01:00"}, "not a date and time"),
    ({"leftOperand": "dateTime", "operator": "gteq",
      "rightOperand": "0001-01-01T00:00:00+01:00"}, "not a date and time"),
])
def test_constraints_outside_the_profile_fail_closed(constraint: dict[str, Any],
                                                     words: str) -> None:
    with pytest.raises(lws.AccessRequestRefused, match=words):
        read(with_constraints(constraint), client="https://app.example/id")


def test_resource_constraints_need_single_resources() -> None:
    data = request(target={"type": "Container", "value": [STORAGE + "shared/"]})
    data["access"][0]["constraint"].append(
        {"leftOperand": "mediaType", "operator": "eq", "rightOperand": "text/turtle"})
    with pytest.raises(lws.AccessRequestRefused, match="single resources"):
        read(data)


def test_a_resource_meets_media_type_and_type_constraints_as_the_pod_describes_it() -> None:
    policy = read(with_constraints(
        {"leftOperand": "mediaType", "operator": "eq", "rightOperand": "text/turtle"},
        {"leftOperand": "type", "operator": "isAnyOf",
         "rightOperand": [lws.LWS + "DataResource", "https://type.example/Song"]})).policies[0]
    url = STORAGE + "shared/notes"
    assert lws.resource_meets(policy, url, "text/turtle", [])
    assert not lws.resource_meets(policy, url, "image/png", [])
    assert not lws.resource_meets(policy, STORAGE + "shared/x/", "text/turtle", [])
    assert lws.resource_meets(policy, STORAGE + "shared/x/", "text/turtle",
                              ["https://type.example/Song"])


def test_reading_leaves_the_document_as_it_was() -> None:
    data = with_constraints({"leftOperand": "dateTime", "operator": "lteq",
                             "rightOperand": "2026-12-09T10:00:00+02:00"})
    before = copy.deepcopy(data)
    asked = read(data)
    assert data == before
    assert asked.not_after == datetime(2026, 12, 9, 8, 0, tzinfo=UTC)


def test_a_small_body_cannot_ask_for_a_huge_record() -> None:
    """32 purposes for 64 resources would be 2,048 items kept in the person's record."""
    data = request(
        target={"type": "StorageResource",
                "value": [f"{STORAGE}shared/n{i}" for i in range(64)]},
        constraint=[{"leftOperand": "purpose", "operator": "isAnyOf",
                     "rightOperand": [f"{DPV}P{i}" for i in range(32)]}])
    with pytest.raises(lws.AccessRequestRefused, match="at most 256"):
        read(data)
