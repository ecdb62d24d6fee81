"""A starter roster of personal terms, in the spirit of IEEE 7012 (MyTerms), as ODRL policies.

The default roster is what a privacy-minded person starts from: service delivery is agreed for a
bounded time, with deletion afterwards; tracking, marketing and passing data on are refused; and
everything the terms do not cover is asked of the person.
"""

from __future__ import annotations

from rdflib import URIRef

from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule
from vrm_agent.negotiation.wire import ODRL_NS, policy_graph
from vrm_agent.policy.model import Policy as TermsPolicy
from vrm_agent.policy.rdf import read_policy

TERMS_BASE = "https://w3id.org/vrm-agent/terms/"
CONTACT_AND_PURCHASES = (PD + "EmailAddress", PD + "TelephoneNumber", PD + "PhysicalAddress",
                         PD + "Purchase", PD + "PurchasesAndSpendingHabit", PD + "Preference")


def service_delivery_only(person: str) -> Policy:
    """SD-BASE: use for delivering the service asked for, at most 90 days, then delete."""
    return Policy(TERMS_BASE + "sd-base", "Offer", (
        Rule("permission", "use", CONTACT_AND_PURCHASES,
             (Constraint("purpose", "isA", DPV + "ServiceProvision"),
              Constraint("elapsedTime", "lteq", "P90D")),
             (Rule("duty", "delete"),)),
    ), assigner=person, title="Service delivery only (SD-BASE)")


def no_stalking(person: str) -> Policy:
    """#NoStalking: no tracking for personalised advertising."""
    return Policy(TERMS_BASE + "no-stalking", "Offer", (
        Rule("prohibition", "use", (), (Constraint(
            "purpose", "isAnyOf", (DPV + "PersonalisedAdvertising", DPV + "Advertising")),)),
    ), assigner=person, title="No stalking (#NoStalking)")


def no_third_parties(person: str) -> Policy:
    """Nothing passed on: no distributing, transferring or selling the data."""
    passing_on = [Rule("prohibition", action) for action in ("distribute", "transfer", "sell")]
    selling = Rule("prohibition", "use", (), (Constraint(
        "purpose", "isA", DPV + "SellDataToThirdParties"),))
    return Policy(TERMS_BASE + "no-third-parties", "Offer", (*passing_on, selling),
                  assigner=person, title="No sharing with third parties")


def no_marketing(person: str) -> Policy:
    return Policy(TERMS_BASE + "no-marketing", "Offer", (
        Rule("prohibition", "use", (), (Constraint("purpose", "isA", DPV + "Marketing"),)),
    ), assigner=person, title="No marketing")


ROSTER = {
    "sd-base": service_delivery_only,
    "no-stalking": no_stalking,
    "no-third-parties": no_third_parties,
    "no-marketing": no_marketing,
}

# What each roster term means for a vendor that asks for the person's data, in plain words.
FOR_VENDORS = {
    "sd-base": "Vendors may use your contact and purchase data only to deliver what you "
               "asked for, for at most 90 days, and must delete it afterwards.",
    "no-stalking": "Vendors may not use your data for advertising or to track you for "
                   "personalised ads; a request for that is refused.",
    "no-third-parties": "Vendors may not pass your data on: no distributing, transferring "
                        "or selling it to others.",
    "no-marketing": "Vendors may not use your data for marketing; a request for that is "
                    "refused.",
}


def default_terms(person: str) -> list[Policy]:
    return [make(person) for make in ROSTER.values()]


def as_terms(policy: Policy) -> TermsPolicy:
    """A policy written in the wire model, as the evaluator reads terms: through its RDF, the
    one path every stored term takes too."""
    graph = policy_graph(policy)
    graph.set((URIRef(policy.uid), ODRL_NS.conflict, ODRL_NS[policy.conflict]))
    return read_policy(graph, URIRef(policy.uid))


def default_policies(person: str) -> list[TermsPolicy]:
    return [as_terms(p) for p in default_terms(person)]
