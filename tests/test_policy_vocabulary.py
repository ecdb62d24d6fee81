"""The pinned ODRL 2.2 and DPV 2.3 facts the policy evaluator relies on.

The facts asserted here are what the upstream files say (checked against them when the extracts
were made), not what one might expect: where they differ from intuition a test says so, so a
refresh of the extracts that changes them fails loudly.
"""

from __future__ import annotations

import json
import re

import pytest
from rdflib import Graph

from vrm_agent.policy.vocabulary import (
    DATA_DIR,
    DPV,
    DPV_EXTRACT,
    LOOKUP_PATH,
    ODRL,
    ODRL_EXTRACT,
    PD,
    Vocabulary,
    compile_lookup,
    dump_lookup,
    read_header,
    vocabulary,
)

# The 34 left operands of the ODRL 2.2 vocabulary (two of them, device and system, deprecated).
LEFT_OPERANDS = (
    "absolutePosition", "absoluteSize", "absoluteSpatialPosition", "absoluteTemporalPosition",
    "count", "dateTime", "delayPeriod", "deliveryChannel", "device", "elapsedTime", "event",
    "fileFormat", "industry", "language", "media", "meteredTime", "payAmount", "percentage",
    "product", "purpose", "recipient", "relativePosition", "relativeSize",
    "relativeSpatialPosition", "relativeTemporalPosition", "resolution", "spatial",
    "spatialCoordinates", "system", "systemDevice", "timeInterval", "unitOfCount", "version",
    "virtualLocation",
)
OPERATORS = (
    "eq", "gt", "gteq", "hasPart", "isA", "isAllOf", "isAnyOf", "isNoneOf", "isPartOf", "lt",
    "lteq", "neq",
)


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return vocabulary()


def o(name: str) -> str:
    return ODRL + name


def test_shipped_json_is_the_compilation_of_the_shipped_extracts() -> None:
    assert dump_lookup(compile_lookup(DATA_DIR)) == LOOKUP_PATH.read_text(encoding="utf-8")


def test_extracts_keep_only_the_listed_predicates() -> None:
    allowed = {
        ODRL_EXTRACT: {"rdf:type", "rdfs:subClassOf", "rdfs:subPropertyOf", "odrl:includedIn",
                       "odrl:implies", "skos:broader", "skos:broaderTransitive", "skos:member",
                       "skos:prefLabel", "rdfs:label", "owl:sameAs", "skos:exactMatch",
                       "owl:deprecated"},
        DPV_EXTRACT: {"rdf:type", "rdfs:subClassOf", "skos:broader", "skos:prefLabel",
                      "owl:deprecated", "sw:term_status"},
    }
    for name, predicates in allowed.items():
        graph = Graph().parse(DATA_DIR / name, format="turtle")
        used = {graph.namespace_manager.normalizeUri(p) for p in graph.predicates()}
        assert used <= predicates, name
        assert all(getattr(v, "language", "en") in ("en", None) for v in graph.objects())


def test_headers_record_upstream_hash_version_and_commit(vocab: Vocabulary) -> None:
    sources = {**read_header(DATA_DIR / ODRL_EXTRACT), **read_header(DATA_DIR / DPV_EXTRACT)}
    assert set(sources) == {"odrl", "dpv", "pd"}
    assert sources["odrl"]["version"] == "2.2"
    assert sources["dpv"]["version"] == sources["pd"]["version"] == "2.3"
    for facts in sources.values():
        assert re.fullmatch(r"[0-9a-f]{64}", facts["sha256"])
        assert re.fullmatch(r"[0-9a-f]{40}", facts["commit"])
        assert facts["licence"]
    assert sources["odrl"]["sha256"] == (
        "2c6e61cc54fd7a1706ef7aa279c80f4d07b7b80ee16b71e6bdabd4fea8ceb25b")
    assert vocab.source == sources


def test_vocabulary_is_loaded_once() -> None:
    assert vocabulary() is vocabulary()


# -- ODRL actions --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["read", "display", "aggregate", "play", "print", "reproduce",
                                    "extract", "distribute", "delete", "transform", "anonymize"])
def test_use_covers_the_actions_included_in_it(vocab: Vocabulary, action: str) -> None:
    assert vocab.is_action(o(action))
    assert vocab.action_covers(o("use"), o(action))
    assert not vocab.action_covers(o(action), o("use"))


def test_inclusion_is_transitive(vocab: Vocabulary) -> None:
    # display is included in play, play in use; extract in reproduce, reproduce in use
    assert vocab.action_covers(o("play"), o("display"))
    assert vocab.action_covers(o("reproduce"), o("extract"))
    assert not vocab.action_covers(o("print"), o("display"))


def test_sell_and_give_are_covered_by_transfer_not_by_use(vocab: Vocabulary) -> None:
    for action in ("sell", "give"):
        assert vocab.action_covers(o("transfer"), o(action))
        assert not vocab.action_covers(o("use"), o(action))
    assert not vocab.action_covers(o("use"), o("transfer"))


def test_copy_is_the_same_as_reproduce(vocab: Vocabulary) -> None:
    # ODRL 2.2 deprecates copy and states it owl:sameAs reproduce
    assert vocab.is_deprecated(o("copy"))
    assert vocab.action_covers(o("reproduce"), o("copy"))
    assert vocab.action_covers(o("copy"), o("reproduce"))
    assert vocab.action_covers(o("use"), o("copy"))


def test_odrl_22_states_no_implies_pairs(vocab: Vocabulary) -> None:
    for action in ("use", "transfer", "move", "sell", "delete", "reproduce"):
        assert vocab.implied_by(o(action)) == frozenset()


def test_unknown_actions(vocab: Vocabulary) -> None:
    assert not vocab.is_action(o("teleport"))
    assert vocab.action_covers(o("teleport"), o("teleport"))
    assert not vocab.action_covers(o("use"), o("teleport"))
    # the Creative Commons actions are defined outside the ODRL namespace and not pinned
    assert not vocab.is_action("http://creativecommons.org/ns#Distribution")


def test_action_labels(vocab: Vocabulary) -> None:
    assert vocab.label(o("use")) == "Use"
    assert vocab.label(o("transfer")) == "Transfer Ownership"


# -- ODRL operands and operators -----------------------------------------------------------------


def test_every_odrl_22_left_operand_is_known(vocab: Vocabulary) -> None:
    assert vocab.counts()["leftOperands"] == len(LEFT_OPERANDS)
    for name in LEFT_OPERANDS:
        assert vocab.is_left_operand(o(name)), name
    assert not vocab.is_left_operand(o("moonPhase"))
    assert not vocab.is_left_operand(o("use"))


def test_operators(vocab: Vocabulary) -> None:
    assert vocab.counts()["operators"] == len(OPERATORS)
    for name in OPERATORS:
        assert vocab.is_operator(o(name)), name
    assert not vocab.is_operator(o("approximately"))
    assert vocab.conflict_terms == {o("perm"), o("prohibit"), o("invalid")}
    assert vocab.rule_types == {o("Permission"), o("Prohibition"), o("Duty")}
    assert o("Offer") in vocab.policy_types and o("Agreement") in vocab.policy_types


# -- DPV -----------------------------------------------------------------------------------------


def test_personalised_advertising_is_personalisation_and_marketing(vocab: Vocabulary) -> None:
    ancestors = vocab.broader_closure(DPV + "PersonalisedAdvertising")
    assert {DPV + "Personalisation", DPV + "Advertising", DPV + "Marketing",
            DPV + "Purpose"} <= ancestors
    assert vocab.is_a(DPV + "PersonalisedAdvertising", DPV + "Personalisation") is True
    assert vocab.is_a(DPV + "PersonalisedAdvertising", DPV + "Marketing") is True
    assert vocab.is_a(DPV + "Advertising", DPV + "Personalisation") is False
    assert vocab.is_purpose(DPV + "PersonalisedAdvertising")


def test_delivery_of_goods_is_a_requested_service(vocab: Vocabulary) -> None:
    for ancestor in ("RequestedServiceProvision", "ServiceProvision", "Purpose"):
        assert vocab.is_a(DPV + "DeliveryOfGoods", DPV + ancestor) is True
    assert vocab.is_a(DPV + "DeliveryOfGoods", DPV + "Marketing") is False


def test_email_address_is_contact_personal_data(vocab: Vocabulary) -> None:
    assert vocab.is_personal_data(PD + "EmailAddress")
    assert vocab.is_a(PD + "EmailAddress", PD + "Contact") is True
    assert vocab.is_a(PD + "EmailAddress", DPV + "PersonalData") is True
    assert not vocab.is_purpose(PD + "EmailAddress")
    assert vocab.label(PD + "EmailAddress") == "Email Address"


def test_every_pd_category_is_personal_data(vocab: Vocabulary) -> None:
    labels = json.loads(LOOKUP_PATH.read_text(encoding="utf-8"))["dpv"]["labels"]
    pd_terms = [i for i in labels if i.startswith(PD)]
    assert len(pd_terms) > 200
    assert all(vocab.is_personal_data(i) for i in pd_terms)


def test_rights_fulfilment_is_a_purpose_by_type_only(vocab: Vocabulary) -> None:
    # DPV types it dpv:Purpose while its broader chain goes to dpv:LegalObligation (a legal basis)
    concept = DPV + "RightsFulfilment"
    assert DPV + "Purpose" not in vocab.broader_closure(concept)
    assert DPV + "LegalBasis" in vocab.broader_closure(concept)
    assert vocab.is_purpose(concept)
    assert vocab.is_a(concept, DPV + "Purpose") is True


def test_unknown_iris_are_undecidable(vocab: Vocabulary) -> None:
    unknown = "https://example.org/purposes#Whatever"
    assert vocab.is_a(unknown, DPV + "Marketing") is None
    assert vocab.is_a(unknown, unknown) is True
    assert vocab.is_a(DPV + "Marketing", unknown) is False
    assert not vocab.is_known_concept(unknown)
    assert vocab.broader_closure(unknown) == {unknown}
    assert vocab.label(unknown) is None
    assert not vocab.is_purpose(unknown) and not vocab.is_personal_data(unknown)


def test_a_deprecated_action_stands_for_its_replacement(vocab: Vocabulary) -> None:
    # ODRL 2.2 deprecates write in favour of modify (skos:exactMatch): use covers both.
    assert vocab.action_covers(ODRL + "modify", ODRL + "write")
    assert vocab.action_covers(ODRL + "use", ODRL + "write")
