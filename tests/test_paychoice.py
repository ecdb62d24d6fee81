"""Customer-held loyalty, paychoice and the r-button as pure logic: the records and their round
trips, the totals, which vendor's side a resource is on, and reading what vendors send."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from rdflib import Graph

from vrm_agent.ledger.categories import belongs_elsewhere, targets_for
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.paychoice import (
    GENERAL_STATEMENT,
    LoyaltyStatement,
    PaymentIntention,
    Recipient,
    VoluntaryPayment,
    parse_amount,
    voluntary_totals,
)
from vrm_agent.ledger.records import Membership, RecordError, Relationship
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.transactions import RESERVED_VENDOR_IDS, vendor_id_for
from vrm_agent.negotiation.signals import (
    MAX_SIGNAL_BYTES,
    NotYours,
    vendor_state_from,
    vendor_state_message,
)
from vrm_agent.negotiation.wire import MalformedMessage
from vrm_agent.vocabulary.compiled import validate_graph

POD = "https://pod.example/me/"
LAYOUT = PodLayout(POD)
VENDOR = "https://shop.example/profile/card#me"
PODCAST = Recipient(name="A podcast", url="https://podcast.example/")


@pytest.mark.parametrize("record", [
    Membership("m1", "acme", "1001", "Club", Decimal(5), tier="Gold", since=date(2019, 3, 1)),
    Relationship("acme", "member", vendor_state="customer",
                 vendor_state_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    LoyaltyStatement(GENERAL_STATEMENT, "I buy here"),
    LoyaltyStatement("acme", "since 2019"),
    VoluntaryPayment("p1", PODCAST, Decimal("4.50"), "eur", date(2026, 1, 2), "episode 1",
                     "good work"),
    VoluntaryPayment("p2", Recipient(vendor_id="acme"), Decimal(5), "EUR", date(2026, 1, 2)),
    PaymentIntention("i1", Recipient(vendor_id="acme"), Decimal(3), "EUR", date(2026, 1, 1),
                     "P1M", "bread", "fair prices"),
], ids=lambda r: type(r).__name__)
def test_records_meet_their_shapes_and_read_back_equal(record: object) -> None:
    graph = record.to_graph(LAYOUT)  # type: ignore[attr-defined]
    validate_graph(graph)
    url = LAYOUT.resource(record.kind, record.id)  # type: ignore[attr-defined]
    assert type(record).from_graph(graph, url, LAYOUT) == record  # type: ignore[attr-defined]


def test_a_membership_written_before_tiers_still_reads() -> None:
    old = Membership("m1", "acme", "1001")
    graph = old.to_graph(LAYOUT)
    back = Membership.from_graph(graph, LAYOUT.resource("memberships", "m1"), LAYOUT)
    assert (back.tier, back.since) == (None, None)


@pytest.mark.parametrize("make", [
    lambda: VoluntaryPayment("p", PODCAST, Decimal(0), "EUR", date(2026, 1, 1)),
    lambda: VoluntaryPayment("p", PODCAST, Decimal("NaN"), "EUR", date(2026, 1, 1)),
    lambda: VoluntaryPayment("p", PODCAST, Decimal(1), "euro", date(2026, 1, 1)),
    lambda: VoluntaryPayment("p", PODCAST, Decimal(1), "EUR", date(2026, 1, 1), "x" * 2001),
    lambda: PaymentIntention("i", PODCAST, Decimal(1), "EUR", date(2026, 1, 1), "P2D"),
    lambda: Recipient(name="  "),
    lambda: Recipient(name="blog", url="blog.example"),
    lambda: LoyaltyStatement("acme", "   "),
    lambda: LoyaltyStatement("../other", "words"),
    lambda: parse_amount("five"),
    # Written by another app: too large to be a payment, or finer than any currency divides.
    lambda: parse_amount("1E+999999"),
    lambda: parse_amount("1000000000000"),
    lambda: parse_amount("0.000000001"),
])
def test_bad_values_are_refused_in_words(make: object) -> None:
    with pytest.raises(RecordError):
        make()  # type: ignore[operator]


def test_a_vendor_state_outside_the_five_is_not_written() -> None:
    with pytest.raises(RecordError, match="relationship state"):
        Relationship("acme", vendor_state="vip").to_graph(LAYOUT)


def test_voluntary_totals_per_recipient_and_month_keep_currencies_apart() -> None:
    payments = [
        VoluntaryPayment("a", PODCAST, Decimal(3), "EUR", date(2026, 1, 5)),
        VoluntaryPayment("b", PODCAST, Decimal(2), "EUR", date(2026, 2, 5)),
        VoluntaryPayment("c", PODCAST, Decimal(1), "USD", date(2026, 2, 6)),
        VoluntaryPayment("d", Recipient(vendor_id="acme"), Decimal(10), "EUR",
                         date(2026, 2, 7)),
    ]
    by_recipient = [(r.key, r.currency, r.count, r.total)
                    for r in voluntary_totals(payments, {"acme": "ACME"}, "vendor")]
    assert by_recipient == [("ACME", "EUR", 1, Decimal(10)), ("A podcast", "EUR", 2, Decimal(5)),
                            ("A podcast", "USD", 1, Decimal(1))]
    by_month = [(r.key, r.currency, r.total) for r in voluntary_totals(payments, {}, "month")]
    assert by_month == [("2026-01", "EUR", Decimal(3)), ("2026-02", "EUR", Decimal(12)),
                        ("2026-02", "USD", Decimal(1))]


def test_memberships_and_statements_go_only_to_their_own_vendor() -> None:
    ledger = Ledger(None, POD)  # type: ignore[arg-type]  # no pod: no I/O
    card_a, card_b = LAYOUT.resource("memberships", "a"), LAYOUT.resource("memberships", "b")
    general = LAYOUT.resource("loyalty", GENERAL_STATEMENT)
    for_acme = LAYOUT.resource("loyalty", "acme")
    mapping = {"https://w3id.org/dpv/pd#GroupMembership": [card_a, card_b],
               "https://w3id.org/dpv/pd#Opinion": [for_acme, general]}
    owners = {card_a: "acme", card_b: "globex", for_acme: "acme"}
    urls = lambda category, vendor: [t.url for t in targets_for(  # noqa: E731
        mapping, category, vendor, ledger, owners)]
    assert urls("https://w3id.org/dpv/pd#GroupMembership", "acme") == [card_a]
    assert urls("https://w3id.org/dpv/pd#GroupMembership", "") == []
    assert urls("https://w3id.org/dpv/pd#Opinion", "globex") == [general]
    assert urls("https://w3id.org/dpv/pd#Opinion", "acme") == [for_acme, general]
    # A card or statement the map holds but the owners do not (made between the two reads, or
    # read with no owners at all) is nobody's, not everybody's.
    for owned in ({card_a: "acme"}, {}, None):
        assert [t.url for t in targets_for(mapping, "https://w3id.org/dpv/pd#GroupMembership",
                                           "globex", ledger, owned)] == []
        assert [t.url for t in targets_for(mapping, "https://w3id.org/dpv/pd#Opinion",
                                           "globex", ledger, owned)] == [general]
    # Asked for by address: the same rule, and a card the map has not seen is nobody's.
    assert belongs_elsewhere(card_b, "acme", owners, ledger)
    assert not belongs_elsewhere(card_a, "acme", owners, ledger)
    assert belongs_elsewhere(LAYOUT.resource("memberships", "new"), "acme", owners, ledger)
    assert not belongs_elsewhere(general, None, owners, ledger)
    assert belongs_elsewhere(LAYOUT.resource("loyalty", "globex"), "acme", {}, ledger)
    assert not belongs_elsewhere(LAYOUT.resource("contact", "email"), "acme", owners, ledger)


def test_a_vendor_tells_only_its_own_known_state() -> None:
    good = vendor_state_message(vendor=VENDOR, state="member")
    assert vendor_state_from(json.dumps(good), VENDOR) == "member"
    unnamed = {k: v for k, v in good.items() if k != "vendor"}
    assert vendor_state_from(json.dumps(unnamed), VENDOR) == "member"
    with pytest.raises(NotYours):
        vendor_state_from(json.dumps({**good, "vendor": "https://other.example/#me"}), VENDOR)
    for bad in ({**good, "relationshipState": "vip"}, {**good, "relationshipState": 3},
                {**good, "relationshipState": ["member", "former"]},
                {**good, "type": "ContractRequestMessage"},
                {k: v for k, v in good.items() if k != "@context"},
                {**good, "@context": "https://evil.example/context"}):
        with pytest.raises(MalformedMessage):
            vendor_state_from(json.dumps(bad), VENDOR)
    with pytest.raises(MalformedMessage):
        vendor_state_from(json.dumps({**good, "reason": ["x" * MAX_SIGNAL_BYTES]}), VENDOR)


@pytest.mark.parametrize("written", ['"false"', '"true"', "1", '"yes"'])
def test_a_signal_another_app_wrote_as_anything_but_a_boolean_is_not_consent(
        written: str) -> None:
    url = LAYOUT.resource("relationships", "acme")
    turtle = Relationship("acme", person_signal=False).to_graph(LAYOUT).serialize(
        format="turtle").replace("personSignal false", f"personSignal {written}")
    back = Relationship.from_graph(Graph().parse(data=turtle, format="turtle"), url, LAYOUT)
    assert back.person_signal is False


def test_the_signal_the_agent_writes_reads_back() -> None:
    url = LAYOUT.resource("relationships", "acme")
    for signal in (True, False, None):
        graph = Relationship("acme", person_signal=signal).to_graph(LAYOUT)
        assert Relationship.from_graph(graph, url, LAYOUT).person_signal is signal


def test_a_card_hosted_outside_the_ledgers_vendors_is_not_a_membership() -> None:
    url = LAYOUT.resource("memberships", "m1")
    graph = Membership("m1", "acme", "1001").to_graph(LAYOUT)
    turtle = graph.serialize(format="turtle").replace(
        LAYOUT.vendor_iri("acme"), "https://cards.example/vendors/acme#it")
    with pytest.raises(RecordError, match="outside the ledger"):
        Membership.from_graph(Graph().parse(data=turtle, format="turtle"), url, LAYOUT)
    assert Membership.from_graph(graph, url, LAYOUT).vendor_id == "acme"


def test_no_vendor_name_is_given_the_id_of_the_statement_for_every_vendor() -> None:
    assert GENERAL_STATEMENT in RESERVED_VENDOR_IDS
    assert vendor_id_for("General") != GENERAL_STATEMENT
    assert vendor_id_for("General").startswith("general--")
    assert vendor_id_for("General Mills") == "general-mills"
