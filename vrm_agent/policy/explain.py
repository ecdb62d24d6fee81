"""Rules and constraints in short plain words, for traces, `vrm-agent terms` and reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vrm_agent.policy.model import ODRL, AnyConstraint, LogicalConstraint, Policy, Rule, Value

_PREFIXES = (("https://w3id.org/dpv/pd#", "pd:"), ("https://w3id.org/dpv#", "dpv:"),
             (ODRL, ""))
_OPERATORS = {"eq": "is", "neq": "is not", "lt": "before/below", "lteq": "at most",
              "gt": "after/above", "gteq": "at least", "isA": "is a", "isAnyOf": "is any of",
              "isAllOf": "is all of", "isNoneOf": "is none of", "isPartOf": "is part of",
              "hasPart": "has part"}


def short(iri: str | None) -> str:
    if iri is None:
        return "(none)"
    for prefix, name in _PREFIXES:
        if iri.startswith(prefix):
            return name + iri[len(prefix):]
    return iri


def _value(value: Value) -> str:
    return short(value.text) if value.is_iri else value.text


def constraint_text(item: AnyConstraint) -> str:
    if isinstance(item, LogicalConstraint):
        joined = f" {item.operator} ".join(constraint_text(c) for c in item.operands)
        return f"({joined})"
    op = short(item.operator)
    values = ", ".join(_value(v) for v in item.right) or "(nothing)"
    return f"{short(item.left)} {_OPERATORS.get(op, op)} {values}"


def rule_text(rule: Rule) -> str:
    parts = [f"{rule.kind} to {short(rule.action) if rule.action else 'do anything'}"]
    if rule.targets:
        parts.append("on " + ", ".join(short(t) for t in rule.targets))
    if rule.assignees:
        parts.append("for " + ", ".join(short(a) for a in rule.assignees))
    parts.extend(f"[{constraint_text(c)}]" for c in rule.refinements + rule.constraints)
    if rule.duties:
        parts.append("with duty to " + ", ".join(short(d.action) for d in rule.duties))
    return " ".join(parts)


def policy_text(policy: Policy) -> str:
    return "; ".join(rule_text(r) for r in policy.rules)


def report_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """A stored FORCE policy report (the JSON-LD node ``rdf.report_json`` writes) in short:
    which rules were active, and which premises were not met or could not be decided."""
    rules = []
    for rule in report.get("ruleReport", []):
        if not isinstance(rule, Mapping):
            continue
        unmet = [f"{str(p.get('@type', '')).removesuffix('Report').lower()}"
                 + (f" ({p['comment']})" if p.get("comment") else "")
                 for p in rule.get("premiseReport", []) if (isinstance(p, Mapping)
                 and p.get("satisfactionState") == "Unsatisfied") or (isinstance(p, Mapping)
                 and p.get("comment"))]
        rules.append({"rule": rule.get("rule"),
                      "kind": str(rule.get("@type", "")).removesuffix("Report").lower(),
                      "active": rule.get("activationState") == "Active",
                      "unmet": unmet})
    return {"policy": report.get("policy"), "request": report.get("policyRequest"),
            "rules": rules}
