"""CPU the terms cost per vendor request: the starter roster plus 50 more rules, judged by the
ODRL evaluator, for requests that are agreed, refused, countered and left to the person.

Also the one-off costs: loading the pinned ODRL and DPV lookup, and reading terms from RDF.
Goal (issue: the terms engine): p50 under 2 ms per decision with the roster plus 50 rules.

Run: python -m benchmarks.policy
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.common import median_ms, percentile, print_table
from vrm_agent.negotiation.decide import decide
from vrm_agent.negotiation.odrl import DPV, PD, Constraint, Policy, Rule
from vrm_agent.negotiation.terms import as_terms, default_policies
from vrm_agent.policy import vocabulary as vocabulary_module
from vrm_agent.policy.evaluate import evaluate
from vrm_agent.policy.model import ODRL, Request, Value, World

PERSON = "https://pod.example/alice/profile/card#me"
VENDOR = "https://shop.example/profile#me"
NOW = datetime(2026, 6, 1, tzinfo=UTC)
RUNS = 400
ROUNDS = 8
PURPOSES = ("ServiceProvision", "Marketing", "ResearchAndDevelopment", "DeliveryOfGoods",
            "PersonalisedAdvertising", "CustomerCare", "FraudPreventionAndDetection")
TARGETS = ("EmailAddress", "PhysicalAddress", "TelephoneNumber", "Purchase", "Preference")


def fifty_rules() -> list[Policy]:
    """Ten policies of five rules each: vendor-specific permissions, prohibitions on purposes,
    dated and bounded permissions: the kinds of rules a person adds over time."""
    policies = []
    for n in range(10):
        rules = []
        for k in range(5):
            purpose = DPV + PURPOSES[(n + k) % len(PURPOSES)]
            target = PD + TARGETS[(n * 5 + k) % len(TARGETS)]
            constraints = (Constraint("purpose", "isA", purpose),
                           Constraint("dateTime", "lt", "2027-01-01T00:00:00Z"),
                           Constraint("elapsedTime", "lteq", f"P{30 + k}D"))
            kind = "prohibition" if k == 4 else "permission"
            rules.append(Rule(kind, "use", (target,), constraints[:1] if kind ==
                              "prohibition" else constraints))
        policies.append(Policy(f"urn:uuid:terms-{n}", "Set", tuple(rules),
                               assignee=f"https://vendor-{n}.example/#me" if n % 2 else None))
    return policies


def request(*items: tuple[str, str, str]) -> Policy:
    rules = tuple(Rule("permission", "use", (PD + target,),
                       (Constraint("purpose", "eq", DPV + purpose),
                        Constraint("elapsedTime", "lteq", duration)))
                  for target, purpose, duration in items)
    return Policy("urn:uuid:request", "Request", rules, assignee=VENDOR)


def timed(action: Callable[[], object], runs: int = RUNS) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def row(name: str, samples: list[float]) -> tuple[str, str]:
    return name, f"{median_ms(samples)} / {percentile(samples, 0.99) * 1000:.2f} ms"


def main() -> None:
    start = time.perf_counter()
    vocabulary_module.vocabulary.cache_clear()
    vocab = vocabulary_module.vocabulary()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    roster = default_policies(PERSON)
    extra = [as_terms(p) for p in fifty_rules()]
    read = time.perf_counter() - start
    terms = roster + extra
    rule_count = sum(len(p.rules) for p in terms)
    cases = {
        "agreed (1 item)": request(("EmailAddress", "ServiceProvision", "P30D")),
        "refused (1 item, marketing)": request(("EmailAddress", "Marketing", "P30D")),
        "countered (1 item, too long)": request(("Purchase", "ServiceProvision", "P365D")),
        "to the person (1 item)": request(("Purchase", "ResearchAndDevelopment", "P30D")),
        "5 items, mixed": request(("EmailAddress", "ServiceProvision", "P30D"),
                                  ("PhysicalAddress", "DeliveryOfGoods", "P7D"),
                                  ("Purchase", "ServiceProvision", "P365D"),
                                  ("TelephoneNumber", "Marketing", "P30D"),
                                  ("Preference", "ResearchAndDevelopment", "P30D")),
    }
    rows = [("pinned vocabulary, first load", f"{loaded * 1000:.1f} ms"),
            (f"reading {len(terms)} policies ({rule_count} rules) from RDF",
             f"{read * 1000:.1f} ms")]
    one = Request(ODRL + "use", VENDOR, PD + "EmailAddress",
                  {ODRL + "purpose": (Value.iri(DPV + "ServiceProvision"),)})
    world = World(NOW)
    actions: dict[str, Callable[[], object]] = {
        f"decide: {name}, p50 / p99": (
            lambda asked=asked: decide(asked, terms, vendor=VENDOR, now=NOW))
        for name, asked in cases.items()}
    actions[f"evaluate one request against all {len(terms)} policies, p50 / p99"] = (
        lambda: [evaluate(p, one, world, vocab=vocab) for p in terms])
    # Interleaved rounds, so that a slow spell of the machine falls on every case alike.
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(ROUNDS):
        for name, action in actions.items():
            samples[name].extend(timed(action, RUNS // ROUNDS))
    rows.extend(row(name, found) for name, found in samples.items())
    print_table(f"Terms decisions, CPU only ({len(roster)} roster + {len(extra)} policies, "
                f"{rule_count} rules; {RUNS} runs each)", rows)


if __name__ == "__main__":
    main()
