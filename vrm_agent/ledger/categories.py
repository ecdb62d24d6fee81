"""Which pod resources hold which personal-data category (DPV ``pd:``), so a vendor's request for
a category becomes a set of resources to grant.

The map is kept in the pod (``vrm/categories``, ``vrm:DataCategoryMapping`` nodes) and made from
the ledger's layout. Purchases are narrowed to the asking vendor's own: a request from ACME for
``pd:Purchase`` maps to ACME's purchase container, never to what the person bought elsewhere.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from rdflib import RDF, Graph, URIRef

from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.records import ContactUnit, Preference
from vrm_agent.ledger.store import Ledger, broken_member, log
from vrm_agent.vocabulary import DPV, PD, VRM

PURCHASE_CATEGORIES = (PD.Purchase, PD.PurchasesAndSpendingHabit)
CONTACT_CATEGORIES = {"email": PD.EmailAddress, "phone": PD.TelephoneNumber,
                      "address": PD.PhysicalAddress}


@dataclass(frozen=True)
class Target:
    """A resource to share; ``members`` for a container shared with everything in it."""

    url: str
    members: bool = False


async def build_map(ledger: Ledger) -> dict[str, list[str]]:
    """The category map as the ledger stands now: category IRI -> resources or containers."""
    contacts, preferences = await asyncio.gather(ledger.list(ContactUnit),
                                                 ledger.list(Preference))
    mapping: dict[str, list[str]] = defaultdict(list)
    for unit in contacts:
        mapping[str(CONTACT_CATEGORIES[unit.type])].append(
            ledger.url_of(ContactUnit, unit.id))
    for preference in preferences:
        mapping[str(PD.Preference)].append(ledger.url_of(Preference, preference.id))
    for category in PURCHASE_CATEGORIES:
        mapping[str(category)].append(ledger.layout.transactions())
    return dict(mapping)


def map_graph(url: str, mapping: dict[str, list[str]]) -> Graph:
    graph = Graph()
    for category, resources in sorted(mapping.items()):
        node = URIRef(f"{url}#{category.rsplit('#', 1)[-1]}")
        graph.add((node, RDF.type, VRM.DataCategoryMapping))
        graph.add((node, DPV.hasPersonalData, URIRef(category)))
        for resource in resources:
            graph.add((node, VRM.storedIn, URIRef(resource)))
    return graph


async def save_map(ledger: Ledger) -> dict[str, list[str]]:
    mapping = await build_map(ledger)
    url = ledger.layout.resource("categories", "map")
    await ledger.write_graph(url, map_graph(url, mapping))
    return mapping


async def load_map(ledger: Ledger) -> dict[str, list[str]]:
    url = ledger.layout.resource("categories", "map")
    try:
        graph = (await ledger.pod.get_graph(url)).graph
    except NotFound:
        return await save_map(ledger)
    except VrmAgentError as exc:  # a broken map is made again from the ledger
        if not broken_member(exc):
            raise
        log.warning(f"warning: the category map {url} cannot be read; made again ({exc})",
                    extra={"resource": url})
        return await save_map(ledger)
    mapping: dict[str, list[str]] = defaultdict(list)
    for node in graph.subjects(RDF.type, VRM.DataCategoryMapping):
        category = graph.value(node, DPV.hasPersonalData)
        for resource in graph.objects(node, VRM.storedIn):
            mapping[str(category)].append(str(resource))
    return {k: sorted(v) for k, v in mapping.items()}


def targets_for(
    mapping: dict[str, list[str]], category: str, vendor_id: str, ledger: Ledger
) -> list[Target]:
    """Pure: the resources a category maps to for one vendor (empty when none hold it)."""
    out = []
    for resource in mapping.get(category, []):
        if resource == ledger.layout.transactions():
            out.append(Target(ledger.layout.transactions(vendor_id), members=True))
        elif resource.endswith("/"):
            out.append(Target(resource, members=True))
        else:
            out.append(Target(resource))
    return out


__all__ = ["Target", "build_map", "load_map", "save_map", "targets_for"]
