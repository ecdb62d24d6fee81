"""Reading transaction files, and the compiled shape checks held to pyshacl's verdicts."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import Graph, Literal, URIRef

from vrm_agent.ledger.importing import _PREFIXES, chunk_statements, plain_record
from vrm_agent.ledger.transactions import (
    ImportFileError,
    Transaction,
    parse_file,
    read_mapping,
    vendor_slug,
)
from vrm_agent.vocabulary import VRM, shapes_graph
from vrm_agent.vocabulary.compiled import NotCompilable, Term, check_records, compiled_checks
from vrm_agent.vocabulary.validation import violations

HEADER = "date,vendor,description,amount,currency,category,order_id,channel\n"


def test_csv_with_bad_rows_reports_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bank.csv"
    path.write_text(HEADER + "\n".join([
        "2024-01-05,ACME Corp.,coffee beans,12.50,eur,food,A-1,online",
        "2024-13-05,ACME Corp.,bad date,1.00,EUR,,,",
        "2024-01-06,,no vendor,1.00,EUR,,,",
        "2024-01-07,Bolt,\"a, quoted \"\"name\"\"\",-3.20,EUR,,,in-store",
        "2024-01-08,Bolt,bad amount,twelve,EUR,,,",
        "2024-01-09,Bolt,bad currency,1,EURO,,,",
        "2024-01-10,Bolt,bad channel,1,EUR,,,carrier pigeon",
    ]) + "\n")
    parsed = parse_file(path)
    assert [t.description for t in parsed.transactions] == ["coffee beans", 'a, quoted "name"']
    assert parsed.transactions[0].currency == "EUR"
    assert parsed.transactions[1].amount == Decimal("-3.20")
    assert [(e.line, e.message.split()[0]) for e in parsed.errors] == [
        (3, "date"), (4, "missing"), (6, "amount"), (7, "currency"), (8, "channel")]


def test_same_content_same_ids_and_duplicates_count(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    row = "2024-01-05,ACME,coffee,12.50,EUR,,,\n"
    path.write_text(HEADER + row + row)
    first, second = parse_file(path).transactions, parse_file(path).transactions
    assert [t.id for t in first] == [t.id for t in second]
    assert first[0].id != first[1].id  # the same purchase twice in one file is two purchases


def test_column_mapping_and_json(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Booked,Payee,Memo,Value,Cur\n2024-02-01,Bolt,taxi,9.90,EUR\n")
    with pytest.raises(ImportFileError, match="lacks column"):
        parse_file(path)
    mapping = read_mapping("date=Booked,vendor=Payee,description=Memo,amount=Value,currency=Cur")
    assert parse_file(path, mapping).transactions[0].vendor == "Bolt"
    with pytest.raises(ImportFileError, match="unknown field"):
        read_mapping("colour=Red")
    data = tmp_path / "t.json"
    data.write_text(json.dumps({"transactions": [
        {"date": "2024-03-01", "vendor": "ACME", "description": "tea", "amount": 3,
         "currency": "GBP"}, {"date": "nope"}, "not an object"]}))
    parsed = parse_file(data)
    assert len(parsed.transactions) == 1 and [e.line for e in parsed.errors] == [2, 3]
    with pytest.raises(ImportFileError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        parse_file(tmp_path / "bad.json")
    with pytest.raises(ImportFileError, match="no such file"):
        parse_file(tmp_path / "missing.csv")


def test_vendor_slugs() -> None:
    assert vendor_slug("ACME Corp.") == "acme-corp"
    assert vendor_slug("  Bolt & Sons  ") == "bolt-sons"
    assert vendor_slug("???").startswith("vendor-")


SELLER = "http://pod.example/vrm/vendors/acme#it"
CHUNK = "http://pod.example/vrm/transactions/acme/2024"


def records_for(transactions: list[Transaction]) -> dict[str, dict[str, list[Term]]]:
    return {f"{CHUNK}#t-{t.id}": dict(plain_record(t, SELLER)) for t in transactions}  # type: ignore[arg-type]


def make(description: str = "tea", currency: str = "EUR", amount: str = "3.50") -> Transaction:
    return Transaction("0" * 24, date(2024, 1, 1), "ACME", description, Decimal(amount), currency)


BROKEN = {
    "empty description": lambda r: r.update({"http://schema.org/description": [
        Term.literal("")]}),
    "two prices": lambda r: r["http://schema.org/price"].append(
        Term.literal("1.00", "http://www.w3.org/2001/XMLSchema#decimal")),
    "lower-case currency": lambda r: r.update({"http://schema.org/priceCurrency": [
        Term.literal("eur")]}),
    "date as text": lambda r: r.update({"http://schema.org/orderDate": [
        Term.literal("yesterday")]}),
    "seller as text": lambda r: r.update({"http://schema.org/seller": [Term.literal("ACME")]}),
    "no seller": lambda r: r.pop("http://schema.org/seller"),
    "negative price": lambda r: r.update({"http://schema.org/price": [
        Term.literal("-1", "http://www.w3.org/2001/XMLSchema#decimal")]}),
    "unknown channel": lambda r: r.update({"https://w3id.org/vrm-agent/ns#channel": [
        Term.iri("https://w3id.org/vrm-agent/ns#Pigeon")]}),
}


@pytest.mark.parametrize("breakage", [None, *BROKEN], ids=lambda b: b or "valid")
def test_compiled_checks_agree_with_pyshacl(breakage: str | None) -> None:
    records = records_for([make()])
    if breakage:
        BROKEN[breakage](next(iter(records.values())))
    compiled = check_records(shapes_graph(), str(VRM.Transaction), records)
    graph = Graph().parse(data=_PREFIXES + chunk_statements(CHUNK, records), format="turtle")
    reference = [v for v in violations(graph) if str(v.focus) != CHUNK]
    assert bool(compiled) == bool(reference), (compiled, reference)
    assert {v.path for v in compiled} == {str(v.path) for v in reference} or not breakage


AUDIT_DESCRIPTIONS = {
    "valid": Literal("access granted"),
    "language-tagged": Literal("accès accordé", lang="fr"),
    "empty": Literal(""),
    "a number": Literal(3),
    "an IRI": URIRef("https://example.org/text"),
}


@pytest.mark.parametrize("description", list(AUDIT_DESCRIPTIONS))
def test_compiled_audit_checks_agree_with_pyshacl(description: str) -> None:
    """Audit events are checked on every append, so their shape is compiled (sh:node to the
    text shape included); the verdicts are pyshacl's."""
    from vrm_agent.ledger.audit import AuditEvent
    from vrm_agent.vocabulary.compiled import validate_graph
    from vrm_agent.vocabulary.validation import ShapeViolation

    day = "http://pod.example/alice/vrm/audit/2030-01-01"
    graph = AuditEvent("AccessGranted", at=datetime(2030, 1, 1, tzinfo=UTC),
                       actor="http://pod.example/alice/profile/card#me",
                       resources=("http://pod.example/alice/a",), id="e1").to_graph(day)
    node = URIRef(f"{day}#e-e1")
    graph.set((node, URIRef("http://schema.org/description"), AUDIT_DESCRIPTIONS[description]))
    compiled_checks(shapes_graph(), str(VRM.AuditEvent))  # compiles, so no pyshacl on append
    reference = violations(graph)
    try:
        validate_graph(graph)
        compiled: list[object] = []
    except ShapeViolation as exc:
        compiled = list(exc.violations)
    assert bool(compiled) == bool(reference), (compiled, reference)
    assert bool(compiled) == (description not in ("valid", "language-tagged"))


def test_shapes_the_compiler_cannot_run_are_refused() -> None:
    # The agreement shape uses sh:or / sh:node: it must go to pyshacl, not be half-checked.
    with pytest.raises(NotCompilable):
        compiled_checks(shapes_graph(), str(VRM.AgreementRecord))


def test_spending_skips_a_transaction_without_a_usable_price() -> None:
    # Transactions in the pod may have been written by another tool: one without a price, or
    # with NaN, adds nothing rather than stopping 'stats'.
    from rdflib import Literal, URIRef

    from vrm_agent.ledger.stats import spending
    from vrm_agent.vocabulary import SCHEMA

    graph = Graph()
    for name, price in (("t1", None), ("t2", "NaN"), ("t3", "not a number"), ("t4", "2.50")):
        tx = URIRef(f"http://pod/alice/vrm/transactions/acme/2025#{name}")
        graph.add((tx, SCHEMA.orderDate, Literal("2025-01-02")))
        graph.add((tx, SCHEMA.priceCurrency, Literal("EUR")))
        if price is not None:
            graph.add((tx, SCHEMA.price, Literal(price)))
    [row] = spending([graph], {}, "month")
    assert (row.key, row.count, row.total) == ("2025-01", 1, Decimal("2.50"))
