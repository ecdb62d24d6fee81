"""Change of address, the pure half: which agreements cover a changed resource, which channel
addresses the agent keeps (and may later DELETE), the vendors' messages, and the change record
the person's view is made from. No pod."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rdflib import Graph, Literal, URIRef

from vrm_agent.negotiation.changes import (
    DELIVERED,
    FAILED,
    NO_CALLBACK,
    NOTIFY,
    WEBHOOK_CHANNEL,
    ChangeRecord,
    ChangeRefused,
    Notice,
    acknowledgement_of,
    change_id_of,
    changed_message,
    check_channel,
    covers,
    registration_of,
    told_rows,
    webhook_service,
)
from vrm_agent.negotiation.protocol import Event, Negotiation, Role, transition
from vrm_agent.negotiation.records import GrantedAccess, NegotiationRecord
from vrm_agent.negotiation.wire import PROTOCOL_CONTEXT, parse_message
from vrm_agent.vendor import request_policy
from vrm_agent.vocabulary.compiled import validate_graph

POD = "https://pod.example/"
SERVICE = POD + ".notifications/WebhookChannel2023/"
ADDRESS = POD + "mover/vrm/contact/address-home"
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
NEGOTIATION = "https://agent.example/negotiations/0123456789abcdef"


def test_covers_the_resource_itself_or_a_container_holding_it_while_in_force() -> None:
    later = NOW + timedelta(days=1)
    assert covers((GrantedAccess((ADDRESS,), later),), ADDRESS, NOW)
    assert covers((GrantedAccess((POD + "mover/vrm/contact/",), later),), ADDRESS, NOW)
    assert not covers((GrantedAccess((POD + "mover/vrm/contact/email",), later),), ADDRESS, NOW)
    assert not covers((GrantedAccess((ADDRESS,), NOW),), ADDRESS, NOW)  # ended now
    assert not covers((GrantedAccess((ADDRESS + "-old",), later),), ADDRESS, NOW)


def test_a_channel_of_the_pods_own_service_is_kept_in_canonical_form() -> None:
    assert check_channel(SERVICE + "8c1d-42", service=SERVICE) == SERVICE + "8c1d-42"
    assert check_channel("HTTPS://POD.example:443/.notifications/WebhookChannel2023/ab",
                         service=SERVICE) == SERVICE + "ab"


@pytest.mark.parametrize("url", [
    "https://elsewhere.example/.notifications/WebhookChannel2023/ab",  # another server
    "http://pod.example/.notifications/WebhookChannel2023/ab",  # another origin (scheme)
    "https://pod.example:8443/.notifications/WebhookChannel2023/ab",  # another port
    SERVICE,  # the service itself
    SERVICE + "ab/cd",  # deeper
    SERVICE + "../../mover/vrm/contact/address-home",  # climbs out
    SERVICE + "%2e%2e/%2e%2e/mover/profile/card",  # climbs out, escaped
    SERVICE + "a%2Fb",  # an escaped slash
    SERVICE + "ab?x=1",
    SERVICE + "ab#frag",
    POD + "mover/vrm/contact/address-home",  # the person's data
    POD + ".notifications/WebSocketChannel2023/ab",  # another service
    "mailto:someone@example.org",
    "",
])
def test_anything_else_is_refused_as_a_channel(url: str) -> None:
    with pytest.raises(ChangeRefused):
        check_channel(url, service=SERVICE)


def test_the_webhook_service_comes_from_the_storage_description() -> None:
    description = Graph()
    storage = URIRef(POD + "mover/")
    socket = URIRef(POD + ".notifications/WebSocketChannel2023/")
    description.add((storage, URIRef(NOTIFY + "subscription"), socket))
    description.add((socket, URIRef(NOTIFY + "channelType"),
                     URIRef(NOTIFY + "WebSocketChannel2023")))
    assert webhook_service(description, str(storage)) is None
    description.add((storage, URIRef(NOTIFY + "subscription"), URIRef(SERVICE)))
    description.add((URIRef(SERVICE), URIRef(NOTIFY + "channelType"), URIRef(WEBHOOK_CHANNEL)))
    assert webhook_service(description, str(storage)) == SERVICE
    assert webhook_service(description, POD + "someone-else/") is None


def test_change_ids_are_urn_uuids_only() -> None:
    assert change_id_of("urn:uuid:0192a7c3-e5f1-4c0d-9a8b-7e6f5d4c3b2a") == \
        "0192a7c3e5f14c0d9a8b7e6f5d4c3b2a"
    for bad in ("urn:uuid:../../x", "https://agent.example/changes/1", "urn:uuid:", "x"):
        with pytest.raises(ChangeRefused):
            change_id_of(bad)


def message(kind: str, **fields: object) -> bytes:
    import json

    return json.dumps({"@context": PROTOCOL_CONTEXT, "type": kind,
                       "negotiation": NEGOTIATION, **fields}).encode()


def test_a_read_acknowledgement_names_one_resource_and_a_bounded_etag() -> None:
    ack = acknowledgement_of(parse_message(message(
        "DataReadMessage", resource=[ADDRESS], etag='"1796-text/turtle"',
        change="urn:uuid:0192a7c3-e5f1-4c0d-9a8b-7e6f5d4c3b2a")))
    assert (ack.resource, ack.etag) == (ADDRESS, '"1796-text/turtle"')
    assert ack.change == "urn:uuid:0192a7c3-e5f1-4c0d-9a8b-7e6f5d4c3b2a"
    assert acknowledgement_of(parse_message(message(
        "DataReadMessage", resource=[ADDRESS], etag="W/\"x\""))).change is None
    for fields in ({"resource": [ADDRESS]}, {"resource": [ADDRESS], "etag": "x" * 201},
                   {"resource": [ADDRESS], "etag": "a\nb"}, {"resource": [ADDRESS], "etag": 7},
                   {"resource": [ADDRESS, ADDRESS + "2"], "etag": "x"}, {"etag": "x"}):
        with pytest.raises(ChangeRefused):
            acknowledgement_of(parse_message(message("DataReadMessage", **fields)))


def test_a_channel_registration_names_its_channel_and_resource() -> None:
    registration = registration_of(parse_message(message(
        "ChannelRegistrationMessage", channel=[SERVICE + "ab"], resource=[ADDRESS])))
    assert (registration.channel, registration.resource) == (SERVICE + "ab", ADDRESS)
    with pytest.raises(ChangeRefused):
        registration_of(parse_message(message("ChannelRegistrationMessage",
                                              resource=[ADDRESS])))


def test_the_change_message_names_the_resource_and_never_its_value() -> None:
    sent = changed_message(negotiation=NEGOTIATION, agreement="urn:uuid:agreement-1",
                           change="urn:uuid:0192a7c3-e5f1-4c0d-9a8b-7e6f5d4c3b2a",
                           resource=ADDRESS, changed_at=NOW)
    assert sent["type"] == "DataChangedMessage"
    assert sent["resource"] == [ADDRESS]
    assert sent["changedAt"] == "2026-06-01T12:00:00Z"
    assert set(sent) == {"@context", "type", "negotiation", "agreement", "change", "resource",
                         "changedAt"}
    parsed = parse_message(__import__("json").dumps(sent))  # what a vendor's inbox reads
    assert parsed.negotiation == NEGOTIATION


def change_record() -> ChangeRecord:
    return ChangeRecord(
        "0192a7c3e5f14c0d9a8b7e6f5d4c3b2a", ADDRESS, NOW, POD + "mover/profile/card#me",
        '"1-text/turtle"',
        (Notice(NEGOTIATION, "https://shop.example/card#me", DELIVERED, (SERVICE + "ab",)),
         Notice(NEGOTIATION.replace("0123", "9999"), "https://other.example/card#me", FAILED),
         Notice(NEGOTIATION.replace("0123", "8888"), "https://third.example/card#me",
                NO_CALLBACK)))


def test_the_change_record_conforms_and_reads_back_the_same() -> None:
    url = POD + "mover/vrm/changes/0192a7c3e5f14c0d9a8b7e6f5d4c3b2a"
    record = change_record().acknowledged(NEGOTIATION, '"1-text/turtle"',
                                          NOW + timedelta(seconds=2))
    graph = record.to_graph(url)
    validate_graph(graph)
    assert ChangeRecord.from_graph(graph, url, record.id) == record
    assert record.iri == "urn:uuid:0192a7c3-e5f1-4c0d-9a8b-7e6f5d4c3b2a"


def test_a_broken_change_record_is_refused_not_trusted() -> None:
    url = POD + "mover/vrm/changes/0192a7c3e5f14c0d9a8b7e6f5d4c3b2a"
    graph = change_record().to_graph(url)
    graph.set((URIRef(url + "#it"), URIRef("http://www.w3.org/ns/prov#generatedAtTime"),
               Literal("last tuesday")))
    with pytest.raises(ChangeRefused):
        ChangeRecord.from_graph(graph, url, "0192a7c3e5f14c0d9a8b7e6f5d4c3b2a")


def test_the_person_sees_who_was_told_how_and_who_says_it_read_which_version() -> None:
    record = change_record().acknowledged(NEGOTIATION, '"1-text/turtle"', NOW)
    record = record.acknowledged(NEGOTIATION.replace("0123", "9999"), '"0-text/turtle"', NOW)
    rows = {r["vendor"]: r for r in told_rows(record, {"https://shop.example/card#me": "Shop"})}
    assert rows["Shop"]["message"] == "delivered"
    assert rows["Shop"]["pod_notification"] == "subscribed"
    assert rows["Shop"]["read"] == "yes"
    assert rows["https://other.example/card#me"]["read"] == "yes, another version"
    assert rows["https://third.example/card#me"]["message"] == "no callback"
    assert rows["https://third.example/card#me"]["read"] == "no"


def test_a_negotiation_record_keeps_its_channels() -> None:
    negotiation = transition(Negotiation("0123456789abcdef", Role.PROVIDER), Event.REQUEST,
                             sender=Role.CONSUMER)
    record = NegotiationRecord("0123456789abcdef", NEGOTIATION, "https://shop.example/card#me",
                               negotiation, request_policy(["pd:EmailAddress"],
                                                           purpose="dpv:DeliveryOfGoods"),
                               NOW, NOW, channels=(SERVICE + "ab",))
    again = NegotiationRecord.from_json(record.to_json(), record_id=record.id)
    assert again.channels == (SERVICE + "ab",)
    without = {k: v for k, v in record.to_json().items() if k != "channel"}
    assert NegotiationRecord.from_json(without, record_id=record.id).channels == ()


def test_a_read_is_recorded_on_the_vendors_own_notice_alone() -> None:
    from vrm_agent.negotiation.changes import read_patch

    url = POD + "mover/vrm/changes/0192a7c3e5f14c0d9a8b7e6f5d4c3b2a"
    record = change_record()
    graph = record.to_graph(url)
    first = read_patch(graph, NEGOTIATION, '"1-text/turtle"', NOW)
    assert "deletes" not in first
    assert {str(s) for s, _, _ in first["inserts"]} == {url + "#notice-1"}
    for triple in first["inserts"]:
        graph.add(triple)
    assert ChangeRecord.from_graph(graph, url, record.id) == \
        record.acknowledged(NEGOTIATION, '"1-text/turtle"', NOW)
    again = read_patch(graph, NEGOTIATION, '"2-text/turtle"', NOW + timedelta(seconds=1))
    assert set(again["deletes"]) == set(first["inserts"])  # the earlier one is replaced
    with pytest.raises(ChangeRefused):
        read_patch(graph, "https://agent.example/negotiations/ffffffffffffffff", '"x"', NOW)


def test_change_ids_are_uuids_of_version_7_that_sort_by_time() -> None:
    import uuid

    from vrm_agent.daemon.changes import new_change_id

    first, later = new_change_id(NOW), new_change_id(NOW + timedelta(milliseconds=1))
    assert first < later
    assert uuid.UUID(first).version == 7
    assert change_id_of(f"urn:uuid:{uuid.UUID(first)}") == first
