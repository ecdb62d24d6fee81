"""The pinned ODRL 2.2 and DPV/DPV-PD facts the policy evaluator needs, as plain lookups.

The evaluator must not fetch a vocabulary at run time (no network, no drift between two runs), so
fact-only extracts of the published files ship in ``data/`` with a compiled ``vocabulary.json``.
Loading that JSON is cheap; rdflib is only needed by :func:`compile_lookup`, which rebuilds the
JSON from the two extracts (``vocab/pinned/extract.py compile`` and a test both call it).

Nothing is read at import time. :func:`vocabulary` loads the pinned files once; transitive
closures are computed on first use per IRI and cached, and only for IRIs the vocabulary knows,
so asking about arbitrary IRIs from a request cannot grow the caches.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "DATA_DIR",
    "DPV",
    "DPV_EXTRACT",
    "LOOKUP_PATH",
    "ODRL",
    "ODRL_EXTRACT",
    "PD",
    "Vocabulary",
    "compile_lookup",
    "dump_lookup",
    "read_header",
    "vocabulary",
]

ODRL = "http://www.w3.org/ns/odrl/2/"
DPV = "https://w3id.org/dpv#"
PD = "https://w3id.org/dpv/pd#"

DATA_DIR = Path(__file__).resolve().parent / "data"
ODRL_EXTRACT = "odrl22.ttl"
DPV_EXTRACT = "dpv.ttl"
LOOKUP_PATH = DATA_DIR / "vocabulary.json"

_RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
_RDFS = "http://www.w3.org/2000/01/rdf-schema#"
_SKOS = "http://www.w3.org/2004/02/skos/core#"
_OWL = "http://www.w3.org/2002/07/owl#"
_SW_STATUS = "http://www.w3.org/2003/06/sw-vocab-status/ns#term_status"

PURPOSE_ROOT = DPV + "Purpose"
PERSONAL_DATA_ROOT = DPV + "PersonalData"

_CLOSURE_CACHE = 8192  # more than the vocabulary has terms: every known IRI stays cached


# -- compiling the lookup from the extracts ------------------------------------------------------


def read_header(path: Path) -> dict[str, dict[str, str]]:
    """The ``# [section]`` / ``# key: value`` provenance block at the top of an extract.

    The provenance lives in comments so the extracts carry nothing but upstream facts as
    triples; the compiled lookup repeats it under ``source``.
    """
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    with path.open(encoding="utf-8") as handle:
        for raw in handle:
            if not raw.startswith("#"):
                break
            line = raw[1:].strip()
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
            elif current is not None and ": " in line:
                key, value = line.split(": ", 1)
                current[key.strip()] = value.strip()
    return sections


def _closure(start: str, edges: Callable[[str], Iterable[str]]) -> set[str]:
    """Every node reachable from ``start`` (itself included), iteratively: DPV chains are deep
    enough that recursion is not worth the risk."""
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _english(values: Iterable[Any]) -> str | None:
    """The one English (or language-less) label, chosen deterministically if there are several."""
    labels = sorted(str(v) for v in values if getattr(v, "language", None) in ("en", None))
    return labels[0] if labels else None


def compile_lookup(data_dir: Path = DATA_DIR) -> dict[str, Any]:
    """Build the lookup dict from the two shipped extracts (not from upstream), so the shipped
    JSON can always be checked against the facts it claims to come from."""
    from rdflib import Graph, URIRef  # only here: loading the pinned JSON needs no rdflib

    odrl_path = data_dir / ODRL_EXTRACT
    dpv_path = data_dir / DPV_EXTRACT
    og = Graph().parse(odrl_path, format="turtle")
    dg = Graph().parse(dpv_path, format="turtle")

    def iris(graph: Graph, s: Any, p: str) -> list[str]:
        return sorted(str(o) for o in graph.objects(s, URIRef(p)) if isinstance(o, URIRef))

    def label(graph: Graph, s: Any) -> str | None:
        return _english(graph.objects(s, URIRef(_SKOS + "prefLabel"))) or _english(
            graph.objects(s, URIRef(_RDFS + "label")))

    def subclasses(graph: Graph, root: str) -> set[str]:
        down: defaultdict[str, set[str]] = defaultdict(set)
        for s, o in graph.subject_objects(URIRef(_RDFS + "subClassOf")):
            down[str(o)].add(str(s))
        return _closure(root, lambda c: down.get(c, ()))

    def instances(graph: Graph, root: str) -> list[str]:
        classes = subclasses(graph, root)
        return sorted({str(s) for s, t in graph.subject_objects(URIRef(_RDF_TYPE))
                       if str(t) in classes and isinstance(s, URIRef)})

    # ODRL --------------------------------------------------------------------------------------
    actions = {
        a: {"includedIn": iris(og, URIRef(a), ODRL + "includedIn"),
            "implies": iris(og, URIRef(a), ODRL + "implies"),
            "label": label(og, URIRef(a))}
        for a in instances(og, ODRL + "Action")
    }
    same_as: dict[str, list[str]] = {}
    # owl:sameAs and, between two ODRL terms, skos:exactMatch: the vocabulary marks a deprecated
    # action's replacement that way (odrl:write exactMatch odrl:modify).
    for prop in (_OWL + "sameAs", _SKOS + "exactMatch"):
        for s in sorted({str(s) for s in og.subjects(URIRef(prop))}):
            same = [o for o in iris(og, URIRef(s), prop) if o.startswith(ODRL)]
            if s.startswith(ODRL) and same:
                same_as[s] = sorted(set(same_as.get(s, [])) | set(same))
    odrl = {
        "actions": actions,
        "leftOperands": {i: label(og, URIRef(i)) for i in instances(og, ODRL + "LeftOperand")},
        "operators": {i: label(og, URIRef(i)) for i in instances(og, ODRL + "Operator")},
        "conflictTerms": instances(og, ODRL + "ConflictTerm"),
        "policyTypes": sorted(subclasses(og, ODRL + "Policy") - {ODRL + "Policy"}),
        "ruleTypes": sorted(subclasses(og, ODRL + "Rule") - {ODRL + "Rule"}),
        "deprecated": sorted({str(s) for s, o in og.subject_objects(URIRef(_OWL + "deprecated"))
                              if o.toPython() is True}),
        "sameAs": same_as,
        # Every term the namespace defines, so that a misspelt one (odrl:constriant) is seen.
        "terms": sorted({str(t) for t in og.subjects()
                         if isinstance(t, URIRef) and str(t).startswith(ODRL)}),
    }

    # DPV + PD ----------------------------------------------------------------------------------
    subjects = sorted({str(s) for s in dg.subjects()
                       if isinstance(s, URIRef) and str(s).startswith((DPV, PD))})
    labels: dict[str, str] = {}
    broader: dict[str, list[str]] = {}
    for s in subjects:
        text = label(dg, URIRef(s))
        if text is not None:
            labels[s] = text
        parents = sorted(set(iris(dg, URIRef(s), _SKOS + "broader"))
                         | set(iris(dg, URIRef(s), _RDFS + "subClassOf")))
        if parents:
            broader[s] = parents

    def ancestors(iri: str) -> set[str]:
        return _closure(iri, lambda c: broader.get(c, ()))

    # DPV 2.x also types each concept with the top concept of its taxonomy (dpv:Purpose, ...).
    # Keep only the types that are known concepts and not already reachable through broader:
    # that is where a concept sits in a second taxonomy (dpv:RightsFulfilment is a Purpose
    # whose broader chain leads to dpv:LegalBasis).
    types: dict[str, list[str]] = {}
    for s in subjects:
        up = ancestors(s)
        extra = sorted(t for t in iris(dg, URIRef(s), _RDF_TYPE) if t in labels and t not in up)
        if extra:
            types[s] = extra

    def below(root: str) -> list[str]:
        def edges(c: str) -> Iterable[str]:
            return [*broader.get(c, ()), *types.get(c, ())]

        return sorted(s for s in labels if root in _closure(s, edges))

    dpv = {
        "broader": broader,
        "labels": labels,
        "types": types,
        "purposes": below(PURPOSE_ROOT),
        "personalData": below(PERSONAL_DATA_ROOT),
        "sunset": sorted(str(s) for s, o in dg.subject_objects(URIRef(_SW_STATUS))
                         if str(o) == "sunset"),
    }

    source = {**read_header(odrl_path), **read_header(dpv_path)}
    return {"source": source, "odrl": odrl, "dpv": dpv}


def dump_lookup(lookup: Mapping[str, Any]) -> str:
    """The one serialisation of the lookup: compact, sorted keys, so a rebuild compares by text."""
    return json.dumps(lookup, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


# -- the lookup at run time ----------------------------------------------------------------------


class Vocabulary:
    """Read-only questions the evaluator asks of ODRL 2.2 and DPV, answered from the lookup.

    Two kinds of "no": ``False`` when both IRIs are known and unrelated, ``None`` from
    :meth:`is_a` when the IRI is not in the vocabulary at all, which the caller must read as
    "cannot decide" rather than as a refusal or a match.
    """

    __slots__ = (
        "_action_labels", "_action_up", "_broader", "_deprecated", "_dpv_labels", "_implies",
        "_implies_closure", "_included_in", "_is_a_up", "_left_operands", "_odrl_terms",
        "_operators",
        "_personal_data", "_purposes", "_same_as", "_types", "_up", "conflict_terms",
        "policy_types", "rule_types", "source",
    )

    def __init__(self, lookup: Mapping[str, Any]) -> None:
        odrl = lookup["odrl"]
        dpv = lookup["dpv"]
        self.source: Mapping[str, Mapping[str, str]] = MappingProxyType(
            {k: MappingProxyType(dict(v)) for k, v in lookup.get("source", {}).items()})
        actions: Mapping[str, Mapping[str, Any]] = odrl["actions"]
        self._included_in = {a: tuple(e["includedIn"]) for a, e in actions.items()}
        self._implies = {a: tuple(e["implies"]) for a, e in actions.items() if e["implies"]}
        self._action_labels = {a: e["label"] for a, e in actions.items() if e.get("label")}
        same: defaultdict[str, set[str]] = defaultdict(set)
        for a, others in odrl.get("sameAs", {}).items():
            for b in others:  # owl:sameAs is symmetric: either name stands for the other
                same[a].add(b)
                same[b].add(a)
        self._same_as = {a: tuple(sorted(b)) for a, b in same.items()}
        self._left_operands: Mapping[str, str | None] = dict(odrl["leftOperands"])
        self._operators: Mapping[str, str | None] = dict(odrl["operators"])
        self._odrl_terms = frozenset(odrl.get("terms", ()))
        self.conflict_terms = frozenset(odrl["conflictTerms"])
        self.policy_types = frozenset(odrl["policyTypes"])
        self.rule_types = frozenset(odrl["ruleTypes"])
        self._deprecated = frozenset(odrl.get("deprecated", ())) | frozenset(dpv.get("sunset", ()))
        self._broader = {k: tuple(v) for k, v in dpv["broader"].items()}
        self._types = {k: tuple(v) for k, v in dpv.get("types", {}).items()}
        self._dpv_labels: Mapping[str, str] = dict(dpv["labels"])
        self._purposes = frozenset(dpv["purposes"])
        self._personal_data = frozenset(dpv["personalData"])
        # Per-instance caches (not decorated methods, which would keep every instance alive).
        self._action_up = lru_cache(maxsize=_CLOSURE_CACHE)(self._compute_action_up)
        self._implies_closure = lru_cache(maxsize=_CLOSURE_CACHE)(self._compute_implies)
        self._up = lru_cache(maxsize=_CLOSURE_CACHE)(self._compute_up)
        self._is_a_up = lru_cache(maxsize=_CLOSURE_CACHE)(self._compute_is_a_up)

    @classmethod
    def from_file(cls, path: Path) -> Vocabulary:
        """Load a compiled lookup (the pinned one, or another for tests)."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    # ODRL ---------------------------------------------------------------------------------------

    def is_action(self, iri: str) -> bool:
        """An ODRL 2.2 action (deprecated ones included: old policies still name them)."""
        return iri in self._included_in

    def _action_edges(self, iri: str) -> tuple[str, ...]:
        return (*self._included_in.get(iri, ()), *self._same_as.get(iri, ()))

    def _compute_action_up(self, iri: str) -> frozenset[str]:
        return frozenset(_closure(iri, self._action_edges))

    def action_covers(self, rule_action: str, asked_action: str) -> bool:
        """Does a rule on ``rule_action`` cover a request for ``asked_action``: the same action,
        or one included in it through odrl:includedIn, transitively? owl:sameAs counts as the
        same action (the vocabulary states odrl:copy sameAs odrl:reproduce)."""
        if rule_action == asked_action:
            return True
        if not self.is_action(asked_action):
            return False
        return rule_action in self._action_up(asked_action)

    def _compute_implies(self, iri: str) -> frozenset[str]:
        return frozenset(_closure(iri, lambda a: self._implies.get(a, ())) - {iri})

    def implied_by(self, action: str) -> frozenset[str]:
        """The actions that doing ``action`` also does (odrl:implies, transitively, without
        ``action`` itself). ODRL22.ttl states no odrl:implies pair, so this is empty today; it
        is kept so a later vocabulary or profile can fill it without changing callers."""
        if action not in self._implies:
            return frozenset()
        return self._implies_closure(action)

    def is_odrl_term(self, iri: str) -> bool:
        """A term the ODRL 2.2 vocabulary defines (a class, property or individual)."""
        return iri in self._odrl_terms

    def is_left_operand(self, iri: str) -> bool:
        """One of the left operands ODRL 2.2 defines."""
        return iri in self._left_operands

    def is_operator(self, iri: str) -> bool:
        """One of the ODRL 2.2 constraint operators."""
        return iri in self._operators

    def is_deprecated(self, iri: str) -> bool:
        """owl:deprecated in ODRL 2.2, or sunset (withdrawn) in DPV: still known, not to be
        written anew."""
        return iri in self._deprecated

    # DPV ----------------------------------------------------------------------------------------

    def is_known_concept(self, iri: str) -> bool:
        """A concept DPV or DPV-PD defines."""
        return iri in self._dpv_labels

    def _compute_up(self, iri: str) -> frozenset[str]:
        return frozenset(_closure(iri, lambda c: self._broader.get(c, ())))

    def broader_closure(self, iri: str) -> frozenset[str]:
        """``iri`` and every ancestor through skos:broader and rdfs:subClassOf."""
        if iri not in self._broader:
            return frozenset((iri,))
        return self._up(iri)

    def _compute_is_a_up(self, iri: str) -> frozenset[str]:
        return frozenset(_closure(iri, lambda c: (*self._broader.get(c, ()),
                                                  *self._types.get(c, ()))))

    def is_a(self, iri: str, ancestor: str) -> bool | None:
        """Is ``iri`` the same as ``ancestor`` or below it? Beyond :meth:`broader_closure` this
        also honours DPV's typing of a concept with another taxonomy's top concept, so it agrees
        with :meth:`is_purpose` and :meth:`is_personal_data`. None: ``iri`` is unknown to DPV."""
        if iri == ancestor:
            return True
        if not self.is_known_concept(iri):
            return None
        return ancestor in self._is_a_up(iri)

    def is_purpose(self, iri: str) -> bool:
        """dpv:Purpose or a purpose below it."""
        return iri in self._purposes

    def is_personal_data(self, iri: str) -> bool:
        """dpv:PersonalData or a category below it (DPV core and DPV-PD)."""
        return iri in self._personal_data

    # both ---------------------------------------------------------------------------------------

    def label(self, iri: str) -> str | None:
        """The English label upstream gives the term, for messages shown to a person."""
        return (self._dpv_labels.get(iri) or self._action_labels.get(iri)
                or self._left_operands.get(iri) or self._operators.get(iri))

    def counts(self) -> dict[str, int]:
        """How many terms of each kind are pinned, for reports and sanity checks."""
        return {"actions": len(self._included_in), "leftOperands": len(self._left_operands),
                "operators": len(self._operators), "dpvConcepts": len(self._dpv_labels),
                "purposes": len(self._purposes), "personalData": len(self._personal_data)}


@cache
def vocabulary() -> Vocabulary:
    """The pinned vocabulary, loaded from the shipped JSON on first use and shared after."""
    return Vocabulary.from_file(LOOKUP_PATH)
