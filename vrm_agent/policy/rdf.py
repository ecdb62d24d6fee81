"""ODRL policies, requests and states of the world read from RDF graphs, and compliance
reports written as RDF in the FORCE Compliance Report Model.

Reading never fails on odd input: what cannot be read is kept as a problem on the rule or
policy, which the evaluator then treats as undecidable (failing closed) and ``validate``
reports. Compact forms are expanded as the Information Model says: policy-level assigner,
assignee, target and action apply to every rule, and a rule with several actions is one rule
per action.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rdflib import RDF, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS
from rdflib.term import Node

from vrm_agent.policy.evaluate import PolicyReport, PremiseReport, RuleReport
from vrm_agent.policy.model import (
    LOGICAL_OPERATORS,
    ODRL,
    XSD,
    AnyConstraint,
    Constraint,
    DutyState,
    LogicalConstraint,
    Policy,
    Request,
    Rule,
    Value,
    World,
)
from vrm_agent.policy.values import Undecidable, parse_datetime
from vrm_agent.policy.vocabulary import vocabulary

ODRL_NS = Namespace(ODRL)
REPORT = Namespace("https://w3id.org/force/compliance-report#")
POLICY_CLASSES = ("Policy", "Set", "Offer", "Agreement", "Request", "Privacy", "Ticket",
                  "Assertion")
RULE_PROPERTIES = {"permission": ODRL_NS.permission, "prohibition": ODRL_NS.prohibition,
                   "obligation": ODRL_NS.obligation}
MAX_DEPTH = 16  # nested logical constraints and duties; deeper is refused, not recursed into
MAX_LIST = 256
MAX_NODES = 4096  # rules and constraints read, counting each repetition of a shared node


def _iri(node: Node | None) -> str | None:
    return str(node) if isinstance(node, URIRef) else None


def _value(node: Node) -> Value:
    if isinstance(node, Literal):
        datatype = str(node.datatype) if node.datatype else (
            "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString" if node.language
            else XSD + "string")
        return Value(str(node), datatype)
    return Value.iri(str(node))


def _list_or_values(graph: Graph, node: Node, prop: URIRef) -> list[Node]:
    """The objects of ``prop``, with an rdf:List among them unrolled (a list that loops or
    branches is cut where it does)."""
    out: list[Node] = []
    for obj in graph.objects(node, prop):
        if isinstance(obj, BNode) and (obj, RDF.first, None) in graph:
            seen: set[Node] = set()
            cell: Node | None = obj
            while cell is not None and cell != RDF.nil and cell not in seen \
                    and len(out) < MAX_LIST:
                seen.add(cell)
                out.extend(graph.objects(cell, RDF.first))
                rest = list(graph.objects(cell, RDF.rest))
                cell = rest[0] if len(rest) == 1 else None
        elif obj != RDF.nil:
            out.append(obj)
    return out[:MAX_LIST]


class TooComplex(Exception):
    """A policy whose rules and constraints, counted with every repetition, exceed the
    budget: a few kilobytes of shared nodes can otherwise stand for millions of rules."""


class _Reader:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.budget = MAX_NODES

    def spend(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise TooComplex

    def unknown_terms(self, node: Node, what: str) -> list[str]:
        """ODRL terms the vocabulary does not define (a misspelt odrl:constriant would
        otherwise be ignored, and the rule read as broader than written)."""
        vocab = vocabulary()
        found = sorted({str(p)[len(ODRL):] for p in self.graph.predicates(node)
                        if str(p).startswith(ODRL) and not vocab.is_odrl_term(str(p))})
        return [f"{what} uses {name!r}, which is not an ODRL 2.2 term" for name in found]

    def one(self, node: Node, prop: URIRef) -> Node | None:
        values = list(self.graph.objects(node, prop))
        return values[0] if len(values) == 1 else None

    def uid(self, node: Node) -> str | None:
        stated = _iri(self.one(node, ODRL_NS.uid))
        return stated or _iri(node)

    def constraint(self, node: Node, depth: int) -> AnyConstraint:
        self.spend()
        if depth > MAX_DEPTH:
            return LogicalConstraint("and", (), None, ("constraints are nested too deeply",))
        for name in LOGICAL_OPERATORS:
            if (node, ODRL_NS[name], None) in self.graph:
                operands = tuple(self.constraint(n, depth + 1)
                                 for n in _list_or_values(self.graph, node, ODRL_NS[name]))
                problems = () if operands else (f"odrl:{name} lists no constraints",)
                others = [n for n in LOGICAL_OPERATORS if n != name
                          and (node, ODRL_NS[n], None) in self.graph]
                if others:
                    problems += ("a logical constraint has more than one operator",)
                return LogicalConstraint(name, operands, self.uid(node), problems)
        problems: list[str] = self.unknown_terms(node, "a constraint")
        left = _iri(self.one(node, ODRL_NS.leftOperand))
        operator = _iri(self.one(node, ODRL_NS.operator))
        if left is None:
            problems.append("a constraint needs exactly one leftOperand, an IRI")
        if operator is None:
            problems.append("a constraint needs exactly one operator, an IRI")
        right = tuple(_value(v) for v in _list_or_values(self.graph, node, ODRL_NS.rightOperand))
        reference = tuple(str(v) for v in self.graph.objects(node, ODRL_NS.rightOperandReference))
        if not right and not reference:
            problems.append("a constraint needs a rightOperand")
        data_type = _iri(self.one(node, ODRL_NS.dataType))
        unit = _iri(self.one(node, ODRL_NS.unit))
        return Constraint(left or "", operator or "", right, self.uid(node), data_type, unit,
                          reference, tuple(problems))

    def constraints(self, node: Node, prop: URIRef, depth: int) -> tuple[AnyConstraint, ...]:
        return tuple(self.constraint(c, depth + 1) for c in self.graph.objects(node, prop))

    def parties(self, node: Node, prop: URIRef, problems: list[str]) -> tuple[str, ...]:
        return self.collection_members(node, prop, problems, "party")

    def collection_members(self, node: Node, prop: URIRef, problems: list[str],
                           what: str) -> tuple[str, ...]:
        """IRIs of the parties or assets (a collection by its own IRI, which members name
        with odrl:partOf; a blank one by its odrl:source); one narrowed by a refinement
        cannot be judged here."""
        found: list[str] = []
        for obj in self.graph.objects(node, prop):
            if (obj, ODRL_NS.refinement, None) in self.graph:
                problems.append(f"a {what} collection with a refinement cannot be judged")
            source = _iri(self.one(obj, ODRL_NS.source))
            iri = _iri(obj) or _iri(self.one(obj, ODRL_NS.uid)) or source
            if iri is None:
                problems.append(f"a {what} is not an IRI")
                continue
            found.append(iri)
        return tuple(found)

    def actions(self, node: Node, problems: list[str]
                ) -> list[tuple[str | None, tuple[AnyConstraint, ...]]]:
        out: list[tuple[str | None, tuple[AnyConstraint, ...]]] = []
        for obj in self.graph.objects(node, ODRL_NS.action):
            if isinstance(obj, URIRef):
                out.append((str(obj), ()))
                continue
            inner = _iri(self.one(obj, RDF.value)) or _iri(self.one(obj, ODRL_NS.uid))
            if inner is None:
                problems.append("an action is neither an IRI nor a refined action with "
                                "rdf:value")
                continue
            out.append((inner, self.constraints(obj, ODRL_NS.refinement, 0)))
        return out or [(None, ())]

    def rules(self, node: Node, kind: str, depth: int = 0,
              inherited: dict[str, tuple[str, ...]] | None = None,
              actions: list[tuple[str | None, tuple[AnyConstraint, ...]]] | None = None,
              ) -> list[Rule]:
        self.spend()
        if depth > MAX_DEPTH:
            return [Rule(kind, problems=("duties are nested too deeply",))]
        if isinstance(node, Literal):
            return [Rule(kind, problems=(f"a {kind} is a text, not a rule",))]
        inherited = inherited or {}
        problems: list[str] = self.unknown_terms(node, f"a {kind}")
        if (node, ODRL_NS.refinement, None) in self.graph:
            problems.append("odrl:refinement belongs on an action, asset or party, not on a "
                            "rule")
        targets = self.collection_members(node, ODRL_NS.target, problems, "asset") or \
            inherited.get("target", ())
        assignees = self.parties(node, ODRL_NS.assignee, problems) or inherited.get("assignee", ())
        assigners = self.parties(node, ODRL_NS.assigner, problems) or inherited.get("assigner", ())
        policy_actions = actions
        actions = self.actions(node, problems)
        if actions == [(None, ())] and policy_actions:
            actions = policy_actions  # with their refinements
        constraints = self.constraints(node, ODRL_NS.constraint, depth)
        duties = tuple(r for d in self.graph.objects(node, ODRL_NS.duty)
                       for r in self.rules(d, "duty", depth + 1))
        remedies = tuple(r for d in self.graph.objects(node, ODRL_NS.remedy)
                         for r in self.rules(d, "duty", depth + 1))
        consequences = tuple(r for d in self.graph.objects(node, ODRL_NS.consequence)
                             for r in self.rules(d, "duty", depth + 1))
        if (node, ODRL_NS.failure, None) in self.graph:
            problems.append("odrl:failure is ODRL 2.1; use remedy or consequence")
        uid = self.uid(node)
        collections = frozenset(self.party_collections(node)) | frozenset(
            inherited.get("collections", ()))
        return [Rule(kind, uid, action, refinements, targets, assignees, assigners,
                     constraints, duties, remedies, consequences, tuple(problems), collections)
                for action, refinements in actions]

    def party_collections(self, node: Node) -> set[str]:
        """Assignees that are party collections (typed so, or defined by odrl:source)."""
        found = set()
        for obj in self.graph.objects(node, ODRL_NS.assignee):
            if (obj, RDF.type, ODRL_NS.PartyCollection) in self.graph or \
                    (obj, ODRL_NS.source, None) in self.graph:
                iri = _iri(obj) or _iri(self.one(obj, ODRL_NS.uid)) or \
                    _iri(self.one(obj, ODRL_NS.source))
                if iri:
                    found.add(iri)
        return found

    def policy(self, node: Node) -> Policy:
        try:
            return self._policy(node)
        except TooComplex:
            return Policy(self.uid(node) or "", "Set", (Rule("prohibition", problems=(
                "the policy is too large or too repetitive to judge",)),), problems=(
                f"it has more than {MAX_NODES} rules and constraints, counted with every "
                "repetition",))

    def _policy(self, node: Node) -> Policy:
        types = [str(t)[len(ODRL):] for t in self.graph.objects(node, RDF.type)
                 if str(t).startswith(ODRL) and str(t)[len(ODRL):] in POLICY_CLASSES]
        problems: list[str] = self.unknown_terms(node, "the policy")
        for misplaced in ("constraint", "refinement", "duty"):
            if (node, ODRL_NS[misplaced], None) in self.graph:
                problems.append(f"odrl:{misplaced} on the policy itself is not ODRL 2.2; put it "
                                "on a rule")
        if not types:
            problems.append("it is not typed as an ODRL policy (odrl:Set, Offer, Agreement...)")
        policy_type = next((t for t in types if t != "Policy"), types[0] if types else "Set")
        if list(self.graph.objects(node, ODRL_NS.inheritFrom)):
            problems.append("inheritFrom would need another policy to be fetched; it never is")
        profiles = list(self.graph.objects(node, ODRL_NS.profile))
        if profiles:
            problems.append("it follows an ODRL profile this agent does not implement: "
                            + ", ".join(str(p) for p in profiles))
        conflict_node = self.one(node, ODRL_NS.conflict)
        if conflict_node is None and len(list(self.graph.objects(node, ODRL_NS.conflict))) > 1:
            problems.append("it states more than one conflict strategy")
        conflict = "invalid"
        if conflict_node is not None:
            name = str(conflict_node)[len(ODRL):] if isinstance(conflict_node, URIRef) \
                and str(conflict_node).startswith(ODRL) else ""
            if name in ("perm", "prohibit", "invalid"):
                conflict = name
            else:
                problems.append(f"unknown conflict strategy {conflict_node}")
        inherited: dict[str, tuple[str, ...]] = {}
        scratch: list[str] = []
        for name, prop in (("target", ODRL_NS.target), ("assignee", ODRL_NS.assignee),
                           ("assigner", ODRL_NS.assigner)):
            members = self.collection_members(node, prop, scratch, name)
            if members:
                inherited[name] = members
        policy_actions = [a for a in self.actions(node, scratch) if a[0]]
        if inherited.get("assignee"):
            inherited["collections"] = tuple(self.party_collections(node))
        problems += scratch
        rules: list[Rule] = []
        for kind, prop in RULE_PROPERTIES.items():
            for rule_node in self.graph.objects(node, prop):
                rules.extend(self.rules(rule_node, kind, inherited=inherited,
                                        actions=policy_actions))
        title = self.one(node, DCTERMS.title)
        return Policy(self.uid(node) or "", policy_type, tuple(rules), conflict,
                      str(title) if isinstance(title, Literal) else None, tuple(problems))


def policy_nodes(graph: Graph) -> list[Node]:
    """The policies a graph holds, requests left out."""
    found: set[Node] = set()
    for name in POLICY_CLASSES:
        if name != "Request":
            found.update(graph.subjects(RDF.type, ODRL_NS[name]))
    return sorted(found, key=str)


def read_policy(graph: Graph, node: str | Node | None = None) -> Policy:
    """The policy at ``node`` (or the graph's only policy)."""
    if node is None:
        nodes = policy_nodes(graph)
        if len(nodes) != 1:
            return Policy("", "Set", (), problems=(
                f"the document holds {len(nodes)} ODRL policies, not one",))
        node = nodes[0]
    return _Reader(graph).policy(URIRef(node) if isinstance(node, str) else node)


def read_requests(graph: Graph) -> list[Request]:
    """One Request per requested permission of every odrl:Request in the graph; the
    request's constraints with ``eq`` (or isAnyOf) state its left operand values."""
    reader = _Reader(graph)
    out: list[Request] = []
    for node in sorted(graph.subjects(RDF.type, ODRL_NS.Request), key=str):
        policy = reader.policy(node)
        for rule in policy.of_kind("permission"):
            values: dict[str, list[Value]] = {}
            for c in rule.constraints:
                if isinstance(c, Constraint) and c.operator in (ODRL + "eq", ODRL + "isAnyOf",
                                                                ODRL + "lteq"):
                    values.setdefault(c.left, []).extend(c.right)
            for target in rule.targets or (None,):
                out.append(Request(rule.action or "", rule.assignees[0] if rule.assignees
                                   else None, target,
                                   {k: tuple(v) for k, v in values.items()},
                                   policy.uid, rule.uid,
                                   rule.assigners[0] if rule.assigners else None))
    return out


def read_world(graph: Graph, *, default_now: datetime | None = None) -> World:
    """The state of the world: the current time (``dct:issued`` of the node the graph calls
    the current time, or its only ``dct:issued``), ``odrl:partOf`` memberships and what duty
    reports say of duties."""
    issued = [o for o in graph.objects(None, DCTERMS.issued) if isinstance(o, Literal)]
    current = URIRef("http://example.com/request/currentTime")
    named = [o for o in graph.objects(current, DCTERMS.issued) if isinstance(o, Literal)]
    now = default_now
    for literal in named or (issued if len(issued) == 1 else []):
        try:
            now = parse_datetime(str(literal))
        except Undecidable:
            now = None
    if now is None:
        raise ValueError("the state of the world gives no current time with a time zone")
    part_of: dict[str, set[str]] = {}
    for member, collection in graph.subject_objects(ODRL_NS.partOf):
        if isinstance(member, URIRef) and isinstance(collection, URIRef):
            part_of.setdefault(str(member), set()).add(str(collection))
    duties: dict[str, DutyState] = {}
    states = {REPORT.Performed: True, REPORT.Unperformed: False, REPORT.Unknown: None}
    for report in graph.subjects(RDF.type, REPORT.DutyReport):
        rule = _iri(next(iter(graph.objects(report, REPORT.rule)), None))
        state = next(iter(graph.objects(report, REPORT.performanceState)), None)
        if rule and state in states:
            duties[rule] = DutyState(states[state])
    return World(now, {k: frozenset(v) for k, v in part_of.items()}, duties)


# -- reports ------------------------------------------------------------------------------------

REPORT_CONTEXT: dict[str, Any] = {
    "report": str(REPORT), "odrl": ODRL, "dct": "http://purl.org/dc/terms/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": XSD,
    "policy": {"@id": "report:policy", "@type": "@id"},
    "policyRequest": {"@id": "report:policyRequest", "@type": "@id"},
    "ruleReport": {"@id": "report:ruleReport", "@container": "@set"},
    "rule": {"@id": "report:rule", "@type": "@id"},
    "ruleRequest": {"@id": "report:ruleRequest", "@type": "@id"},
    "activationState": {"@id": "report:activationState", "@type": "@vocab"},
    "attemptState": {"@id": "report:attemptState", "@type": "@vocab"},
    "performanceState": {"@id": "report:performanceState", "@type": "@vocab"},
    "deonticState": {"@id": "report:deonticState", "@type": "@vocab"},
    "satisfactionState": {"@id": "report:satisfactionState", "@type": "@vocab"},
    "premiseReport": {"@id": "report:premiseReport", "@container": "@set"},
    "conditionReport": {"@id": "report:conditionReport", "@container": "@set"},
    "constraint": {"@id": "report:constraint", "@type": "@id"},
    "constraintLeftOperand": {"@id": "report:constraintLeftOperand"},
    "constraintOperator": {"@id": "report:constraintOperator", "@type": "@id"},
    "constraintRightOperand": {"@id": "report:constraintRightOperand"},
    "created": {"@id": "dct:created", "@type": "xsd:dateTime"},
    "comment": "rdfs:comment",
    **{name: f"report:{name}" for name in (
        "PolicyReport", "PermissionReport", "ProhibitionReport", "DutyReport",
        "ConstraintReport", "PartyReport", "TargetReport", "ActionReport", "Active",
        "Inactive", "Attempted", "NotAttempted", "Performed", "Unperformed", "Unknown",
        "NonSet", "Violated", "Fulfilled", "Satisfied", "Unsatisfied")},
}
_PREMISE_TYPES = {"constraint": "ConstraintReport", "party": "PartyReport",
                  "target": "TargetReport", "action": "ActionReport"}
_RULE_TYPES = {"permission": "PermissionReport", "prohibition": "ProhibitionReport",
               "obligation": "DutyReport", "duty": "DutyReport"}


def _operand_json(value: Value) -> dict[str, str]:
    return {"@id": value.text} if value.is_iri else {"@value": value.text, "@type": value.kind}


def _premise_json(premise: PremiseReport) -> dict[str, Any]:
    out: dict[str, Any] = {"@type": _PREMISE_TYPES[premise.kind], "satisfactionState":
                           "Satisfied" if premise.satisfied else "Unsatisfied"}
    if premise.constraint:
        out["constraint"] = premise.constraint
    if premise.operator:
        out["constraintLeftOperand"] = [_operand_json(v) for v in premise.left_values]
        out["constraintOperator"] = premise.operator
        out["constraintRightOperand"] = [_operand_json(v) for v in premise.right]
    if premise.why:
        # FORCE has no state for "could not be decided": the satisfaction state is the
        # fail-closed reading, and this says why.
        out["comment"] = f"could not be decided: {premise.why}"
    if premise.parts:
        out["premiseReport"] = [_premise_json(p) for p in premise.parts]
    return out


def _rule_json(report: RuleReport, request_rule: str | None) -> dict[str, Any]:
    kind = report.rule.kind
    out: dict[str, Any] = {"@type": _RULE_TYPES[kind],
                           "activationState": "Active" if report.active else "Inactive"}
    if report.rule.uid:
        out["rule"] = report.rule.uid
    if kind in ("permission", "prohibition"):
        out["attemptState"] = "Attempted"
        if request_rule:
            out["ruleRequest"] = request_rule
    if report.performance is not None:
        out["performanceState"] = report.performance.value
    if report.deontic is not None:
        out["deonticState"] = report.deontic.value
    if report.premises:
        out["premiseReport"] = [_premise_json(p) for p in report.premises]
    conditions = report.conditions + report.consequences
    if conditions:
        out["conditionReport"] = [_rule_json(c, None) for c in conditions]
    if report.rule.problems:
        out["comment"] = [f"could not be read: {p}" for p in report.rule.problems]
    return out


def report_json(report: PolicyReport) -> dict[str, Any]:
    """One policy report as a JSON-LD node (terms of :data:`REPORT_CONTEXT`), nested."""
    out: dict[str, Any] = {"@type": "PolicyReport", "created": report.world.now.isoformat(),
                           "ruleReport": [_rule_json(r, report.request.rule_uid)
                                          for r in report.rules]}
    if report.policy.uid:
        out["policy"] = report.policy.uid
    if report.request.uid:
        out["policyRequest"] = report.request.uid
    if report.policy.problems:
        out["comment"] = [f"could not be read: {p}" for p in report.policy.problems]
    return out


def reports_document(reports: Iterable[PolicyReport]) -> dict[str, Any]:
    return {"@context": REPORT_CONTEXT, "@graph": [report_json(r) for r in reports]}


def report_graph(reports: Iterable[PolicyReport] | Mapping[str, Any]) -> Graph:
    """Reports (or a document of them, as stored) as RDF in the FORCE Compliance Report
    Model."""
    document = reports if isinstance(reports, Mapping) else reports_document(reports)
    graph = Graph()
    graph.parse(data=json.dumps(document), format="json-ld")
    graph.bind("report", REPORT)
    graph.bind("odrl", ODRL_NS)
    return graph
