"""Spending from the ledger: totals per vendor, month and category, never mixing currencies."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rdflib import Graph

from vrm_agent.errors import NotFound
from vrm_agent.ledger.records import Vendor
from vrm_agent.ledger.store import Ledger, read_members
from vrm_agent.vocabulary import SCHEMA, VRM

GROUPINGS = ("vendor", "month", "category")


@dataclass(frozen=True)
class SpendingRow:
    key: str
    currency: str
    count: int
    total: Decimal

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "currency": self.currency, "count": self.count,
                "total": str(self.total)}


def spending(graphs: list[Graph], names: dict[str, str], by: str) -> list[SpendingRow]:
    """Pure: transaction graphs in, totals out. Refunds count negative."""
    if by not in GROUPINGS:
        raise ValueError(f"group by one of {', '.join(GROUPINGS)}")
    totals: dict[tuple[str, str], list[Decimal]] = defaultdict(list)
    for graph in graphs:
        for tx in graph.subjects(SCHEMA.orderDate, None):
            try:  # a record someone else wrote may lack a price: it adds nothing
                price = Decimal(str(graph.value(tx, SCHEMA.price)))
            except ArithmeticError:
                continue
            if not price.is_finite():
                continue
            if graph.value(tx, VRM.refund) is not None and bool(
                    graph.value(tx, VRM.refund).toPython()):  # type: ignore[union-attr]
                price = -price
            if by == "vendor":
                seller = str(graph.value(tx, SCHEMA.seller))
                key = names.get(seller, seller.split("#")[0].rsplit("/", 1)[-1])
            elif by == "month":
                key = str(graph.value(tx, SCHEMA.orderDate))[:7]
            else:
                key = str(graph.value(tx, SCHEMA.category) or "(none)")
            totals[(key, str(graph.value(tx, SCHEMA.priceCurrency)))].append(price)
    rows = [SpendingRow(key, currency, len(values), sum(values, Decimal(0)))
            for (key, currency), values in totals.items()]
    if by == "month":
        return sorted(rows, key=lambda r: (r.key, r.currency))
    return sorted(rows, key=lambda r: (-r.total, r.key, r.currency))


async def transaction_graphs(ledger: Ledger) -> list[Graph]:
    chunks: list[str] = []
    for vendor_id in sorted(await ledger.ids(Vendor)):
        try:
            chunks += await ledger.pod.list_container(ledger.layout.transactions(vendor_id))
        except NotFound:
            continue
    good, _ = await read_members(chunks, ledger.pod.get_graph, what="transaction document",
                                 reported=ledger.reported)
    return [resource.graph for _, resource in good]


async def ledger_spending(ledger: Ledger, by: str) -> list[SpendingRow]:
    return (await ledger_spending_by(ledger, (by,)))[by]


async def ledger_spending_by(ledger: Ledger, groupings: Sequence[str] = GROUPINGS
                             ) -> dict[str, list[SpendingRow]]:
    """The totals for several groupings, reading the purchases from the pod once."""
    vendors = await ledger.list(Vendor)
    names = {ledger.layout.vendor_iri(v.id): v.name for v in vendors}
    graphs = await transaction_graphs(ledger)
    # In a thread: 10,000 purchases take seconds (benchmarks/spending.py), and the daemon's
    # negotiations must not wait for the dashboard's totals.
    return await asyncio.to_thread(
        lambda: {by: spending(graphs, names, by) for by in groupings})
