"""Make the pinned, fact-only vocabulary extracts the policy evaluator ships with.

Why: the evaluator must answer from a fixed vocabulary (no fetching at run time), and we keep in
the repository only the upstream facts it needs (types, hierarchy links, English labels), never
upstream definitions or notes. Each extract records where it came from and the SHA-256 of the
upstream file, so a later refresh shows exactly what moved.

    python vocab/pinned/extract.py extract ODRL22.ttl DPV.ttl PD.ttl
        [--odrl-git DIR] [--dpv-git DIR] [--rev REV] [--data-dir DIR]
    python vocab/pinned/extract.py compile [--data-dir DIR]

``extract`` writes ``odrl22.ttl``, ``dpv.ttl`` and ``vocabulary.json``; ``compile`` rewrites only
the JSON from the shipped extracts. With ``--odrl-git`` / ``--dpv-git`` the three paths are read
from that git directory at ``--rev`` (default HEAD) and its commit is recorded; otherwise they
are plain files and ``--odrl-commit`` / ``--dpv-commit`` say which commit they came from.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rdflib import BNode, Graph, Literal, URIRef

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from a checkout: import the package beside it
    sys.path.insert(0, str(ROOT))

from vrm_agent.policy.vocabulary import (  # noqa: E402
    DATA_DIR,
    DPV,
    DPV_EXTRACT,
    LOOKUP_PATH,
    ODRL,
    ODRL_EXTRACT,
    PD,
    compile_lookup,
    dump_lookup,
)

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"
DCT = "http://purl.org/dc/terms/"
SW = "http://www.w3.org/2003/06/sw-vocab-status/ns#"
VANN = "http://purl.org/vocab/vann/"

PREFIXES = {
    "odrl": ODRL, "dpv": DPV, "pd": PD, "rdf": RDF, "rdfs": RDFS, "skos": SKOS, "owl": OWL,
    "xsd": XSD, "sw": SW, "schema": "http://schema.org/",
}

# Predicates kept; English only for the label predicates. Anything else is dropped.
ODRL_KEEP = (RDF + "type", RDFS + "subClassOf", RDFS + "subPropertyOf", ODRL + "includedIn",
             ODRL + "implies", SKOS + "broader", SKOS + "broaderTransitive", SKOS + "member",
             SKOS + "prefLabel", RDFS + "label", OWL + "sameAs", SKOS + "exactMatch",
             OWL + "deprecated")
DPV_KEEP = (RDF + "type", RDFS + "subClassOf", SKOS + "broader", SKOS + "prefLabel",
            OWL + "deprecated", SW + "term_status")
LABELS = {SKOS + "prefLabel", RDFS + "label"}
KEPT_STATUS = {"sunset"}  # the DPV status that withdraws a term; "accepted"/"modified" say nothing

ODRL_REPOSITORY = "https://github.com/w3c/poe"
DPV_REPOSITORY = "https://github.com/w3c/dpv"
ODRL_LICENCE = "W3C Software and Document License (the repository's LICENSE.md)"
DPV_LICENCE = "W3C Document License 2023 (dct:license of the ontology)"

_LOCAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$|^$")


@dataclass(frozen=True)
class Upstream:
    """One upstream file: its bytes and where they came from."""

    name: str
    repository: str
    path: str
    commit: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def graph(self) -> Graph:
        return Graph().parse(data=self.data.decode("utf-8"), format="turtle")


def read_upstream(name: str, repository: str, path: str, git_dir: str | None, rev: str,
                  commit: str | None) -> Upstream:
    """Read from a bare mirror (recording its commit) or from a plain file."""
    if git_dir:
        head = subprocess.run(["git", "-C", git_dir, "rev-parse", rev], check=True,
                              capture_output=True, text=True).stdout.strip()
        data = subprocess.run(["git", "-C", git_dir, "show", f"{head}:{path}"], check=True,
                              capture_output=True).stdout
        return Upstream(name, repository, path, head, data)
    return Upstream(name, repository, path, commit or "unknown", Path(path).read_bytes())


# -- choosing triples ------------------------------------------------------------------------


def keep(graph: Graph, namespaces: Sequence[str], predicates: Iterable[str]
         ) -> tuple[list[tuple[URIRef, URIRef, URIRef | Literal]], int]:
    """The kept triples and how many matching ones were dropped for a blank-node object."""
    wanted = set(predicates)
    kept: list[tuple[URIRef, URIRef, URIRef | Literal]] = []
    blank = 0
    for s, p, o in graph:
        if not (isinstance(s, URIRef) and str(s).startswith(tuple(namespaces))):
            continue
        if str(p) not in wanted:
            continue
        if isinstance(o, BNode):
            blank += 1  # an OWL restriction or list: structure we do not carry
            continue
        if str(p) in LABELS and not (isinstance(o, Literal) and o.language == "en"):
            continue
        if str(p) == SW + "term_status" and str(o) not in KEPT_STATUS:
            continue
        kept.append((s, p, o))  # type: ignore[arg-type]
    return kept, blank


def ontology(graph: Graph, iri: str) -> dict[str, str]:
    """Version facts of the ontology node, for the header."""
    node = URIRef(iri)
    found = {}
    for key, pred in (("version", OWL + "versionInfo"), ("modified", DCT + "modified"),
                      ("dct:license", DCT + "license")):
        value = graph.value(node, URIRef(pred))
        if value is not None:
            found[key] = str(value)
    return found


def check_namespace(graph: Graph, ontology_iri: str, namespace: str) -> None:
    """Refuse to extract when upstream declares a namespace other than the one we pin."""
    declared = graph.value(URIRef(ontology_iri), URIRef(VANN + "preferredNamespaceUri"))
    if declared is not None and str(declared) != namespace:
        raise SystemExit(f"{ontology_iri} declares namespace {declared}, expected {namespace}")
    if not any(str(s).startswith(namespace) for s in graph.subjects()):
        raise SystemExit(f"no term of {namespace} in {ontology_iri}")


# -- writing Turtle ------------------------------------------------------------------------------


def term(node: URIRef | Literal) -> str:
    """A node in Turtle, as a prefixed name where one is safe, else in full."""
    if isinstance(node, Literal):
        text = (str(node).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                .replace("\r", "\\r").replace("\t", "\\t"))
        if node.language:
            return f'"{text}"@{node.language}'
        if node.datatype is not None:
            return f'"{text}"^^{term(URIRef(node.datatype))}'
        return f'"{text}"'
    iri = str(node)
    for prefix, namespace in sorted(PREFIXES.items(), key=lambda kv: -len(kv[1])):
        if iri.startswith(namespace) and _LOCAL.match(iri[len(namespace):]):
            return f"{prefix}:{iri[len(namespace):]}"
    return f"<{iri}>"


def turtle(header: list[str], triples: Iterable[tuple[URIRef, URIRef, URIRef | Literal]]) -> str:
    """Sorted Turtle, grouped by subject: the same facts always give the same bytes."""
    by_subject: dict[str, dict[str, set[str]]] = {}
    for s, p, o in triples:
        by_subject.setdefault(term(s), {}).setdefault(term(p), set()).add(term(o))
    body: list[str] = []
    used: set[str] = set()
    for subject in sorted(by_subject):
        predicates = sorted(by_subject[subject], key=lambda p: (p != "rdf:type", p))
        lines = []
        for predicate in predicates:
            objects = sorted(by_subject[subject][predicate])
            verb = "a" if predicate == "rdf:type" else predicate
            lines.append(f"{verb} {', '.join(objects)}")
        body.append(f"{subject} " + " ;\n    ".join(lines) + " .\n")
        text = " ".join([subject, *predicates, *(o for p in predicates
                                                 for o in by_subject[subject][p])])
        used.update(pfx for pfx in PREFIXES if re.search(rf"(^|[\s^]){pfx}:", text))
    prefixes = [f"@prefix {p}: <{PREFIXES[p]}> ." for p in sorted(used)]
    return "\n".join([*(f"# {line}".rstrip() for line in header), "", *prefixes, "",
                      "\n".join(body)])


def source_block(up: Upstream, facts: dict[str, str], licence: str) -> list[str]:
    """The ``# [name]`` provenance section ``read_header`` parses back."""
    lines = [f"[{up.name}]", f"repository: {up.repository}", f"file: {up.path}",
             f"commit: {up.commit}"]
    lines += [f"{k}: {facts[k]}" for k in ("version", "modified") if k in facts]
    lines += [f"sha256: {up.sha256}", f"licence: {licence}"]
    if "dct:license" in facts:
        lines.append(f"licence-iri: {facts['dct:license']}")
    return lines


def wrap(predicates: Iterable[str]) -> list[str]:
    """The kept predicates as indented header lines."""
    return textwrap.wrap(", ".join(term(URIRef(p)) for p in predicates), 90,
                         initial_indent="  ", subsequent_indent="  ")


# -- commands ----------------------------------------------------------------------------------


def extract(odrl: Upstream, dpv: Upstream, pd: Upstream, data_dir: Path) -> None:
    """Write both extracts, then compile the JSON from what was written."""
    og = odrl.graph()
    if og.value(URIRef(ODRL), URIRef(RDF + "type")) != URIRef(OWL + "Ontology"):
        raise SystemExit(f"{odrl.path} has no ontology node {ODRL}")
    dg, pg = dpv.graph(), pd.graph()
    check_namespace(dg, "https://w3id.org/dpv", DPV)
    check_namespace(pg, "https://w3id.org/dpv/pd", PD)

    triples, blank = keep(og, [ODRL], ODRL_KEEP)
    header = [
        "Fact-only extract of the W3C ODRL 2.2 vocabulary, written by vocab/pinned/extract.py;",
        "do not edit by hand (to regenerate, see vrm_agent/policy/data/README.md).",
        f"Kept only triples whose subject is in <{ODRL}> and whose predicate is one of:",
        *wrap(ODRL_KEEP),
        f"Labels in English only; {blank} matching triple(s) with a blank-node object dropped.",
        "Nothing else: no definitions, notes, comments or examples.",
        "", *source_block(odrl, ontology(og, ODRL), ODRL_LICENCE),
    ]
    (data_dir / ODRL_EXTRACT).write_text(turtle(header, triples), encoding="utf-8")

    both = dg + pg
    triples, blank = keep(both, [DPV, PD], DPV_KEEP)
    header = [
        "Fact-only extract of DPV and DPV-PD, written by vocab/pinned/extract.py;",
        "do not edit by hand (to regenerate, see vrm_agent/policy/data/README.md).",
        f"Kept only triples whose subject is in <{DPV}> or <{PD}>",
        "and whose predicate is one of:",
        *wrap(DPV_KEEP),
        "Labels in English only; sw:term_status only where it is \"sunset\";",
        f"{blank} matching triple(s) with a blank-node object dropped.",
        "Nothing else: no definitions, notes, sources or examples.",
        "", *source_block(dpv, ontology(dg, "https://w3id.org/dpv"), DPV_LICENCE),
        "", *source_block(pd, ontology(pg, "https://w3id.org/dpv/pd"), DPV_LICENCE),
    ]
    (data_dir / DPV_EXTRACT).write_text(turtle(header, triples), encoding="utf-8")
    compile_json(data_dir)


def compile_json(data_dir: Path) -> None:
    """Rewrite vocabulary.json from the extracts in ``data_dir``."""
    text = dump_lookup(compile_lookup(data_dir))
    (data_dir / LOOKUP_PATH.name).write_text(text, encoding="utf-8")
    print(f"{data_dir / LOOKUP_PATH.name}: {len(text.encode('utf-8'))} bytes")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    ex = commands.add_parser("extract", help="write the extracts and the JSON from upstream")
    ex.add_argument("odrl", help="ODRL22.ttl")
    ex.add_argument("dpv", help="<ver>/dpv/dpv.ttl")
    ex.add_argument("pd", help="<ver>/pd/pd.ttl")
    ex.add_argument("--odrl-git", help="git directory the ODRL path is read from")
    ex.add_argument("--dpv-git", help="git directory the DPV and PD paths are read from")
    ex.add_argument("--rev", default="HEAD", help="revision read with --*-git (default HEAD)")
    ex.add_argument("--odrl-commit", help="upstream commit of a plain ODRL file")
    ex.add_argument("--dpv-commit", help="upstream commit of plain DPV and PD files")
    ex.add_argument("--data-dir", type=Path, default=DATA_DIR)
    co = commands.add_parser("compile", help="rewrite vocabulary.json from the extracts")
    co.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    if args.command == "compile":
        compile_json(args.data_dir)
        return 0
    odrl = read_upstream("odrl", ODRL_REPOSITORY, args.odrl, args.odrl_git, args.rev,
                         args.odrl_commit)
    dpv = read_upstream("dpv", DPV_REPOSITORY, args.dpv, args.dpv_git, args.rev, args.dpv_commit)
    pd = read_upstream("pd", DPV_REPOSITORY, args.pd, args.dpv_git, args.rev, args.dpv_commit)
    extract(odrl, dpv, pd, args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
