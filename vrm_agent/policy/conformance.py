"""Runs conformance material in the layout of the FORCE ODRL Test Suite against the evaluator
and prints how many expected rule activations it reproduces.

    python -m vrm_agent.policy.conformance PATH/TO/ODRL-Test-Suite/data

Each test case names a policy, a request, a state of the world and an expected compliance
report; a case passes when every rule report it expects has the same activation state (and,
for each premise kind it lists, the same satisfaction state) in the evaluator's report. The
material stays outside the project; this only reads it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from rdflib import RDF, Graph, Namespace, URIRef
from rdflib.namespace import DCTERMS

from vrm_agent.policy.evaluate import PolicyReport, evaluate
from vrm_agent.policy.rdf import REPORT, policy_nodes, read_policy, read_requests, read_world

EX = Namespace("http://example.org/")
_PREMISE_KINDS = {REPORT.PartyReport: "party", REPORT.TargetReport: "target",
                  REPORT.ActionReport: "action"}


@dataclass(frozen=True)
class CaseResult:
    case: str
    title: str
    passed: bool
    detail: str


def _load(files: list[Path]) -> Graph:
    graph = Graph()
    for path in files:
        graph.parse(path, format="turtle")
    return graph


def _expected(graph: Graph, report: URIRef) -> dict[str, tuple[bool, dict[str, bool]]]:
    """Rule IRI -> (active?, {premise kind: satisfied?})."""
    out: dict[str, tuple[bool, dict[str, bool]]] = {}
    for rule_report in graph.objects(report, REPORT.ruleReport):
        rule = str(next(graph.objects(rule_report, REPORT.rule)))
        active = (rule_report, REPORT.activationState, REPORT.Active) in graph
        premises = {}
        for premise in graph.objects(rule_report, REPORT.premiseReport):
            for cls, kind in _PREMISE_KINDS.items():
                if (premise, RDF.type, cls) in graph:
                    premises[kind] = (premise, REPORT.satisfactionState,
                                      REPORT.Satisfied) in graph
        out[rule] = (active, premises)
    return out


def _actual(report: PolicyReport) -> dict[str, tuple[bool, dict[str, bool]]]:
    return {r.rule.uid or "": (r.active, {p.kind: p.satisfied for p in r.premises
                                           if p.kind != "constraint"})
            for r in report.rules}


def run(data: Path) -> list[CaseResult]:
    # One graph per file: the material reuses constraint IRIs across policies.
    policies = {node: graph for path in sorted((data / "policies").glob("*.ttl"))
                for graph in [_load([path])] for node in policy_nodes(graph)}
    requests = {r.uid: graph for path in sorted((data / "requests").glob("*.ttl"))
                for graph in [_load([path])] for r in read_requests(graph)}
    worlds = {}
    for path in sorted((data / "sotw").glob("*.ttl")):
        graph = _load([path])
        for node in graph.subjects(RDF.type, EX.Sotw):
            worlds[node] = graph
    results = []
    for path in sorted((data / "test_cases").glob("*.ttl")):
        case_graph = _load([path])
        for case in case_graph.subjects(RDF.type, EX.TestCase):
            title = str(next(case_graph.objects(case, DCTERMS.title), ""))
            policy_iri = next(case_graph.objects(case, EX.policy))
            request_iri = next(case_graph.objects(case, EX.request))
            world = read_world(worlds[next(case_graph.objects(case, EX.sotw))])
            policy = read_policy(policies[policy_iri], policy_iri)
            asked = [r for r in read_requests(requests[str(request_iri)])
                     if r.uid == str(request_iri)]
            expected = _expected(case_graph, next(case_graph.objects(case, EX.expectedReport)))
            actual: dict[str, tuple[bool, dict[str, bool]]] = {}
            for request in asked:
                actual.update(_actual(evaluate(policy, request, world)))
            wrong = [f"{rule}: expected {'active' if want[0] else 'inactive'}, "
                     f"got {got[0] if got else 'no report'}"
                     for rule, want in expected.items()
                     if (got := actual.get(rule)) is None or got[0] != want[0]
                     or any(got[1].get(k) != v for k, v in want[1].items())]
            results.append(CaseResult(path.stem, title, not wrong, "; ".join(wrong)))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the suite's data folder")
    args = parser.parse_args(argv)
    results = run(args.data)
    for result in results:
        mark = "pass" if result.passed else "FAIL"
        print(f"{mark}  {result.case}  {result.title}" + (
            f"\n      {result.detail}" if result.detail else ""))
    passed = sum(r.passed for r in results)
    print(f"{passed} of {len(results)} cases reproduce the expected rule activations")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
