"""The vocabulary's HTML page, generated from ``vocab/vrm.ttl`` (and the shapes, for each record's
fields). Never edit ``vocab/vrm.html`` by hand; run::

    python -m vrm_agent.vocabulary.html          # regenerate, and refresh the packaged copies
    python -m vrm_agent.vocabulary.html --check  # exit 1 if anything is out of date

Every term gets an anchor named after its local name, so ``https://w3id.org/vrm-agent/ns#Intent``
lands on ``#Intent``. The page is self-contained: one file, inline CSS, no scripts, no fetches.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

from rdflib import OWL, RDF, RDFS, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DCTERMS, SH
from rdflib.term import Node

from vrm_agent.vocabulary import DATA_DIR, NAMESPACE, PREFIXES, VRMSH

# The repository's vocab/ folder: the source the page and the packaged copies are made from.
SOURCE_DIR = Path(__file__).resolve().parents[2] / "vocab"
# Files copied verbatim into the package (vrm.html after it is generated).
PACKAGED_FILES = ("vrm.ttl", "vrm.context.jsonld", "vrm.shapes.ttl", "vrm.html", "vrmp.ttl")

PREFERRED_PREFIX = URIRef("http://purl.org/vocab/vann/preferredNamespacePrefix")
ONTOLOGY = URIRef(NAMESPACE.rstrip("#"))

_CURIE_PREFIXES: dict[str, str] = {
    **{prefix: str(ns) for prefix, ns in PREFIXES.items()},
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "sh": str(SH),
    "vrmsh": str(VRMSH),
}

_CSS = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #1d1d1f; background: #fff; }
h1 { font-size: 1.9rem; margin-bottom: .2rem; }
h2 { border-bottom: 2px solid #d8dde3; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { margin: 0 0 .3rem; font-size: 1.15rem; }
code { font: .92em ui-monospace, SFMono-Regular, Menlo, monospace; }
a { color: #0b5cad; text-decoration: none; } a:hover { text-decoration: underline; }
section.term { border: 1px solid #d8dde3; border-radius: 6px; padding: .8rem 1rem;
               margin: 1rem 0; }
section.term:target { border-color: #0b5cad; box-shadow: 0 0 0 2px #cfe2f7; }
.iri { color: #5b6470; font-size: .9em; word-break: break-all; margin: 0 0 .5rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dl.meta dt { font-weight: 600; color: #3a4149; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; font-size: .95em; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid #e6e9ed;
         padding: .25rem .5rem; }
th { background: #f4f6f8; }
ul.toc { columns: 3 12rem; padding-left: 1.2rem; }
.note { color: #5b6470; }
"""


def curie(iri: Node) -> str:
    """``schema:Order`` for a known namespace, else the IRI itself."""
    text = str(iri)
    best = ""
    for prefix, namespace in _CURIE_PREFIXES.items():
        if text.startswith(namespace) and len(namespace) > len(_CURIE_PREFIXES.get(best, "")):
            best = prefix
    if best:
        return f"{best}:{text[len(_CURIE_PREFIXES[best]):]}"
    return text


def local_name(iri: Node) -> str:
    return str(iri)[len(NAMESPACE):]


def is_ours(node: Node) -> bool:
    return isinstance(node, URIRef) and str(node).startswith(NAMESPACE)


def link(node: Node) -> str:
    """A vocabulary term links to its anchor on this page; any other IRI to itself."""
    if is_ours(node):
        return f'<a href="#{escape(local_name(node))}"><code>{escape(curie(node))}</code></a>'
    if isinstance(node, URIRef):
        return f'<a href="{escape(str(node))}"><code>{escape(curie(node))}</code></a>'
    if isinstance(node, Literal):
        return f"<code>{escape(_literal_text(node))}</code>"
    return "<code>(blank node)</code>"


def _literal_text(value: Literal) -> str:
    return f'"{value}"'


def _text(graph: Graph, subject: Node, predicate: URIRef) -> str:
    """The English (or untagged) value of a text property, with its line breaks folded."""
    values = sorted(
        (v for v in graph.objects(subject, predicate) if isinstance(v, Literal)),
        key=lambda v: (v.language not in (None, "en"), str(v)),
    )
    return " ".join(str(values[0]).split()) if values else ""


def _list(graph: Graph, head: Node) -> list[Node]:
    return list(Collection(graph, head))


def _class_expression(graph: Graph, node: Node) -> str:
    """A class IRI as a link, or an owl:unionOf as "A or B or C"."""
    union = graph.value(node, OWL.unionOf)
    if union is not None:
        return " or ".join(link(member) for member in _list(graph, union))
    return link(node)


def _sorted_terms(nodes: Iterable[Node]) -> list[URIRef]:
    return sorted({n for n in nodes if is_ours(n)}, key=lambda n: local_name(n).lower())


class _Vocabulary:
    """The parts of the vocabulary graph the page shows, computed once."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.classes = _sorted_terms(graph.subjects(RDF.type, OWL.Class))
        self.properties = _sorted_terms(
            s
            for kind in (OWL.ObjectProperty, OWL.DatatypeProperty, RDF.Property)
            for s in graph.subjects(RDF.type, kind)
        )
        self.individuals = _sorted_terms(graph.subjects(RDF.type, OWL.NamedIndividual))

    def domains(self, prop: URIRef) -> list[Node]:
        return sorted(self.graph.objects(prop, RDFS.domain), key=str)

    def properties_of(self, cls: URIRef) -> list[URIRef]:
        """Our properties whose domain is ``cls`` or a union that includes it."""
        found = []
        for prop in self.properties:
            for domain in self.domains(prop):
                union = self.graph.value(domain, OWL.unionOf)
                members = _list(self.graph, union) if union is not None else [domain]
                if cls in members:
                    found.append(prop)
        return found

    def members_of(self, cls: URIRef) -> list[URIRef]:
        return _sorted_terms(self.graph.subjects(RDF.type, cls))


def _meta(rows: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{escape(name)}</dt><dd>{value}</dd>" for name, value in rows if value)
    return f'<dl class="meta">{items}</dl>' if items else ""


def _links(nodes: Iterable[Node]) -> str:
    return ", ".join(link(n) for n in nodes)


# --- record fields, from the shapes -----------------------------------------------------------


def _count(shapes: Graph, prop: Node) -> str:
    low = shapes.value(prop, SH.minCount)
    high = shapes.value(prop, SH.maxCount)
    if shapes.value(prop, SH.hasValue) is not None and low is None:
        low = Literal(1)  # sh:hasValue requires the value to be there
    lo = int(low) if low is not None else 0
    if high is None:
        return f"{lo}..*"
    hi = int(high)
    return str(lo) if lo == hi else f"{lo}..{hi}"


def _expected(shapes: Graph, prop: Node) -> str:
    """What values a property shape accepts, in a few words."""
    parts: list[str] = []
    for value in shapes.objects(prop, SH.hasValue):
        parts.append(f"exactly {link(value)}")
    for datatype in shapes.objects(prop, SH.datatype):
        parts.append(link(datatype))
    alternatives = shapes.value(prop, SH["or"])
    if alternatives is not None:
        datatypes = [shapes.value(m, SH.datatype) for m in _list(shapes, alternatives)]
        parts.append(" or ".join(link(d) for d in datatypes if d is not None))
    for node_shape in shapes.objects(prop, SH.node):
        # A value shape's rdfs:label says what it accepts in words; else name the shape.
        words = shapes.value(node_shape, RDFS.label)
        parts.append(escape(str(words)) if words is not None
                     else f"conforming to <code>{escape(curie(node_shape))}</code>")
    for cls in shapes.objects(prop, SH["class"]):
        parts.append(f"a {link(cls)}")
    kind = shapes.value(prop, SH.nodeKind)
    if kind is not None and not parts:
        parts.append({SH.IRI: "an IRI", SH.BlankNodeOrIRI: "a node",
                      SH.IRIOrLiteral: "an IRI or a literal"}.get(kind, curie(kind)))
    allowed = shapes.value(prop, SH["in"])
    if allowed is not None:
        parts.append("one of " + _links(_list(shapes, allowed)))
    for pattern in shapes.objects(prop, SH.pattern):
        parts.append(f"matching <code>{escape(str(pattern))}</code>")
    for bound, words in ((SH.minInclusive, "&ge;"), (SH.minExclusive, "&gt;")):
        for value in shapes.objects(prop, bound):
            parts.append(f"{words} {escape(str(value))}")
    return "; ".join(p for p in parts if p) or "any value"


def _field_table(shapes: Graph, shape: Node) -> str:
    rows = []
    for prop in shapes.objects(shape, SH.property):
        path = shapes.value(prop, SH.path)
        if not isinstance(path, URIRef):
            continue
        count = _count(shapes, prop)
        rows.append((not count.startswith("0"), curie(path), path, count, _expected(shapes, prop)))
    # Required fields first, then alphabetical: a stable order whatever rdflib's order is.
    rows.sort(key=lambda r: (not r[0], r[1]))
    body = "".join(
        f"<tr><td>{link(path)}</td><td>{count}</td><td>{expected}</td></tr>"
        for _, _, path, count, expected in rows
    )
    note = ""
    message = shapes.value(shape, SH.message)
    if message is not None and shapes.value(shape, SH["or"]) is not None:
        note = f'<p class="note">Also: {escape(str(message))}.</p>'
    return (
        "<table><thead><tr><th>property</th><th>count</th><th>value</th></tr></thead>"
        f"<tbody>{body}</tbody></table>{note}"
    )


def _record_shapes(shapes: Graph | None) -> tuple[dict[URIRef, list[Node]], list[Node]]:
    """Shapes by target class, and the shapes that target the values of a property."""
    by_class: dict[URIRef, list[Node]] = {}
    by_value: list[Node] = []
    if shapes is None:
        return by_class, by_value
    for shape in sorted(shapes.subjects(RDF.type, SH.NodeShape), key=str):
        for cls in shapes.objects(shape, SH.targetClass):
            if isinstance(cls, URIRef):
                by_class.setdefault(cls, []).append(shape)
        if shapes.value(shape, SH.targetObjectsOf) is not None:
            by_value.append(shape)
    return by_class, by_value


# --- the page -----------------------------------------------------------------------------------


def _class_section(vocab: _Vocabulary, cls: URIRef, shapes: Graph | None,
                   record_shapes: list[Node]) -> str:
    g = vocab.graph
    parents = sorted(g.objects(cls, RDFS.subClassOf), key=str)
    children = _sorted_terms(g.subjects(RDFS.subClassOf, cls))
    rows = [
        ("Subclass of", _links(parents)),
        ("Subclasses", _links(children)),
        ("Properties", _links(vocab.properties_of(cls))),
        ("Values", _links(vocab.members_of(cls))),
    ]
    fields = ""
    if shapes is not None:
        for shape in record_shapes:
            fields += (f"<p>A record of this class has (shape "
                       f"<code>{escape(curie(shape))}</code>):</p>")
            fields += _field_table(shapes, shape)
    return _term_section(g, cls, "Class", rows, fields)


def _property_section(vocab: _Vocabulary, prop: URIRef) -> str:
    g = vocab.graph
    kinds = []
    if (prop, RDF.type, OWL.ObjectProperty) in g:
        kinds.append("object property")
    if (prop, RDF.type, OWL.DatatypeProperty) in g:
        kinds.append("datatype property")
    if (prop, RDF.type, OWL.FunctionalProperty) in g:
        kinds.append("functional (one value)")
    rows = [
        ("Kind", escape(", ".join(kinds))),
        ("Domain", " and ".join(_class_expression(g, d) for d in vocab.domains(prop))),
        ("Range", _links(sorted(g.objects(prop, RDFS.range), key=str))),
        ("Subproperty of", _links(sorted(g.objects(prop, RDFS.subPropertyOf), key=str))),
    ]
    return _term_section(g, prop, "Property", rows)


def _individual_section(vocab: _Vocabulary, individual: URIRef) -> str:
    g = vocab.graph
    types = [t for t in sorted(g.objects(individual, RDF.type), key=str)
             if t != OWL.NamedIndividual]
    return _term_section(g, individual, "Individual", [("Type", _links(types))])


def _term_section(graph: Graph, term: URIRef, kind: str, rows: Sequence[tuple[str, str]],
                  extra: str = "") -> str:
    name = local_name(term)
    label = _text(graph, term, RDFS.label)
    comment = _text(graph, term, RDFS.comment)
    return (
        f'<section class="term" id="{escape(name)}">'
        f"<h3>{escape(kind)} <code>vrm:{escape(name)}</code>"
        + (f" &mdash; {escape(label)}" if label else "")
        + "</h3>"
        f'<p class="iri">{escape(str(term))}</p>'
        f"<p>{escape(comment)}</p>"
        f"{_meta(rows)}{extra}</section>\n"
    )


def _toc(title: str, anchor: str, terms: Sequence[URIRef]) -> str:
    items = "".join(f'<li><a href="#{escape(local_name(t))}">{escape(local_name(t))}</a></li>'
                    for t in terms)
    return f'<h3><a href="#{anchor}">{escape(title)}</a></h3><ul class="toc">{items}</ul>'


def _other_records(shapes: Graph | None, by_class: dict[URIRef, list[Node]],
                   by_value: list[Node]) -> str:
    """Shapes of records whose class is reused, and of values nested in records."""
    if shapes is None:
        return ""
    parts = []
    for cls in sorted((c for c in by_class if not is_ours(c)), key=curie):
        for shape in by_class[cls]:
            parts.append(f'<section class="term" id="shape-{escape(str(shape).split("#")[-1])}">'
                         f"<h3>Records typed {link(cls)}</h3>{_field_table(shapes, shape)}"
                         "</section>\n")
    for shape in by_value:
        targets = sorted(shapes.objects(shape, SH.targetObjectsOf), key=curie)
        parts.append(f'<section class="term" id="shape-{escape(str(shape).split("#")[-1])}">'
                     f"<h3>Values of {' and '.join(link(t) for t in targets)}</h3>"
                     f"{_field_table(shapes, shape)}</section>\n")
    if not parts:
        return ""
    return (
        '<h2 id="records">Other records and values</h2>'
        "<p>Records the agent writes with reused classes, and the nodes nested in records, are "
        "checked by these shapes too.</p>" + "".join(parts)
    )


def render_html(vocabulary: Graph, shapes: Graph | None = None) -> str:
    """The whole page. Deterministic: the same graphs always give the same text."""
    vocab = _Vocabulary(vocabulary)
    g = vocabulary
    title = _text(g, ONTOLOGY, DCTERMS.title) or "VRM vocabulary"
    by_class, by_value = _record_shapes(shapes)
    license_iri = g.value(ONTOLOGY, DCTERMS.license)
    header = _meta([
        ("Namespace", f"<code>{escape(NAMESPACE)}</code>"),
        ("Preferred prefix", f"<code>{escape(str(g.value(ONTOLOGY, PREFERRED_PREFIX)))}</code>"),
        ("Version", escape(str(g.value(ONTOLOGY, OWL.versionInfo) or ""))),
        ("Creator", escape(_text(g, ONTOLOGY, DCTERMS.creator))),
        ("License", link(license_iri) if license_iri is not None else ""),
        ("Formats", "this page, Turtle (<code>text/turtle</code>) and JSON-LD "
                    "(<code>application/ld+json</code>), by content negotiation wherever the "
                    "vocabulary is served"),
    ])
    reused = "".join(
        f"<li><code>{escape(curie(ns).rstrip(':'))}</code> {link(ns)}</li>"
        for ns in sorted(g.objects(ONTOLOGY, DCTERMS.references), key=str)
    )
    classes = "".join(_class_section(vocab, c, shapes, by_class.get(c, [])) for c in vocab.classes)
    properties = "".join(_property_section(vocab, p) for p in vocab.properties)
    individuals = "".join(_individual_section(vocab, i) for i in vocab.individuals)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        "<!-- Generated from vocab/vrm.ttl by python -m vrm_agent.vocabulary.html; "
        "do not edit. -->\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n"
        f"<p>{escape(_text(g, ONTOLOGY, DCTERMS.description))}</p>\n{header}\n"
        '<h2 id="contents">Contents</h2>\n'
        + _toc("Classes", "classes", vocab.classes)
        + _toc("Properties", "properties", vocab.properties)
        + _toc("Individuals", "individuals", vocab.individuals)
        + '\n<h2 id="reused">Reused vocabularies</h2>\n'
        "<p>Only what VRM adds is defined here. Records use these vocabularies' terms for "
        f"everything else:</p><ul>{reused}</ul>\n"
        f'<h2 id="classes">Classes</h2>\n{classes}\n'
        f'<h2 id="properties">Properties</h2>\n{properties}\n'
        f'<h2 id="individuals">Individuals</h2>\n{individuals}\n'
        f"{_other_records(shapes, by_class, by_value)}\n"
        "</body>\n</html>\n"
    )


def _parse_source(path: Path) -> Graph:
    return Graph().parse(path, format="turtle")


def generate(source: Path = SOURCE_DIR) -> str:
    """The page for the vocabulary and shapes in ``source``."""
    return render_html(_parse_source(source / "vrm.ttl"), _parse_source(source / "vrm.shapes.ttl"))


def stale_files(source: Path = SOURCE_DIR, packaged: Path = DATA_DIR) -> list[str]:
    """What is out of date: the page against a fresh generation, the copies against vocab/."""
    stale = []
    page = source / "vrm.html"
    if not page.is_file() or page.read_text(encoding="utf-8") != generate(source):
        stale.append(str(page))
    for name in PACKAGED_FILES:
        copy, original = packaged / name, source / name
        if not copy.is_file() or copy.read_bytes() != original.read_bytes():
            stale.append(str(copy))
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vrm_agent.vocabulary.html",
        description="Generate vocab/vrm.html from vocab/vrm.ttl and refresh the packaged copies.",
    )
    parser.add_argument("--source", type=Path, default=SOURCE_DIR,
                        help="the vocab/ folder (default: the repository's)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if the page or a copy is out of date")
    args = parser.parse_args(argv)
    source: Path = args.source
    if not (source / "vrm.ttl").is_file():
        print(f"no vrm.ttl in {source}: run this from a source checkout", file=sys.stderr)
        return 2
    if args.check:
        stale = stale_files(source)
        for path in stale:
            print(f"out of date: {path}", file=sys.stderr)
        return 1 if stale else 0
    page = generate(source)
    (source / "vrm.html").write_text(page, encoding="utf-8", newline="\n")
    DATA_DIR.mkdir(exist_ok=True)
    for name in PACKAGED_FILES:
        shutil.copyfile(source / name, DATA_DIR / name)
    print(f"wrote {source / 'vrm.html'} and copied {len(PACKAGED_FILES)} files to {DATA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
