"""Which pod resources hold which personal-data category (DPV ``pd:``), so a vendor's request for
a category becomes a set of resources to grant.

The map is kept in the pod (``vrm/categories``, ``vrm:DataCategoryMapping`` nodes) and made from
the ledger's layout. Purchases are narrowed to the asking vendor's own: a request from ACME for
``pd:Purchase`` maps to ACME's purchase container, never to what the person bought elsewhere.
Memberships (``pd:GroupMembership``) and loyalty statements (``pd:Opinion``) are narrowed the
same way: a vendor is shared the memberships of its own programme and the statements made for it
or for any vendor, never those meant for another (:func:`held_by`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from rdflib import RDF, Graph, URIRef

from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.paychoice import GENERAL_STATEMENT, LoyaltyStatement
from vrm_agent.ledger.records import ContactUnit, Membership, Preference
from vrm_agent.ledger.store import Ledger, broken_member, log
from vrm_agent.vocabulary import DPV, PD, VRM

PURCHASE_CATEGORIES = (PD.Purchase, PD.PurchasesAndSpendingHabit)
CONTACT_CATEGORIES = {"email": PD.EmailAddress, "phone": PD.TelephoneNumber,
                      "address": PD.PhysicalAddress}
MEMBERSHIP_CATEGORY = PD.GroupMembership  # DPV: groups and memberships a person belongs to
LOYALTY_CATEGORY = PD.Opinion  # the person's own word of loyalty: a view they hold


@dataclass(frozen=True)
class Target:
    """A resource to share; ``members`` for a container shared with everything in it."""

    url: str
    members: bool = False


async def build_map(ledger: Ledger) -> dict[str, list[str]]:
    """The category map as the ledger stands now: category IRI -> resources or containers."""
    contacts, preferences, memberships, statements = await asyncio.gather(
        ledger.list(ContactUnit), ledger.list(Preference), ledger.list(Membership),
        ledger.list(LoyaltyStatement))
    mapping: dict[str, list[str]] = defaultdict(list)
    for unit in contacts:
        mapping[str(CONTACT_CATEGORIES[unit.type])].append(
            ledger.url_of(ContactUnit, unit.id))
    for preference in preferences:
        mapping[str(PD.Preference)].append(ledger.url_of(Preference, preference.id))
    for category in PURCHASE_CATEGORIES:
        mapping[str(category)].append(ledger.layout.transactions())
    for membership in memberships:
        mapping[str(MEMBERSHIP_CATEGORY)].append(ledger.url_of(Membership, membership.id))
    for statement in statements:
        mapping[str(LOYALTY_CATEGORY)].append(ledger.url_of(LoyaltyStatement, statement.id))
    return dict(mapping)


async def held_by(ledger: Ledger) -> dict[str, str]:
    """Resources that belong to one vendor's side of the ledger -> that vendor's id: each
    membership (its programme's host) and each loyalty statement made for one vendor. Only
    that vendor is ever shared them (:func:`targets_for`)."""
    memberships, statements = await asyncio.gather(ledger.list(Membership),
                                                   ledger.list(LoyaltyStatement))
    owners = {ledger.url_of(Membership, m.id): m.vendor_id for m in memberships}
    owners.update({ledger.url_of(LoyaltyStatement, s.id): s.vendor_id
                   for s in statements if s.vendor_id})
    return owners


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


def belongs_elsewhere(url: str, vendor_id: str | None, owners: dict[str, str],
                      ledger: Ledger) -> bool:
    """Pure: whether ``url`` is on another vendor's side of the ledger. A membership the map
    has not seen yet counts as another's (fail closed); a loyalty statement is its vendor's by
    its id, ``general`` being anyone's."""
    if url in owners:
        return owners[url] != vendor_id
    if url.startswith(ledger.layout.container(Membership.kind)):
        return True
    loyalty = ledger.layout.container(LoyaltyStatement.kind)
    if url.startswith(loyalty):
        return url[len(loyalty):] not in (GENERAL_STATEMENT, vendor_id)
    return False


def targets_for(
    mapping: dict[str, list[str]], category: str, vendor_id: str, ledger: Ledger,
    owners: dict[str, str] | None = None,
) -> list[Target]:
    """Pure: the resources a category maps to for one vendor (empty when none hold it);
    ``owners`` (:func:`held_by`) keeps out what belongs to another vendor's side."""
    out = []
    for resource in mapping.get(category, []):
        # Every resource, not only those ``owners`` names: the map and the owners are read
        # apart, and a card made between the two reads is nobody's until both know it.
        if belongs_elsewhere(resource, vendor_id, owners or {}, ledger):
            continue
        if resource == ledger.layout.transactions():
            out.append(Target(ledger.layout.transactions(vendor_id), members=True))
        elif resource.endswith("/"):
            out.append(Target(resource, members=True))
        else:
            out.append(Target(resource))
    return out


__all__ = ["LOYALTY_CATEGORY", "MEMBERSHIP_CATEGORY", "Target", "belongs_elsewhere",
           "build_map", "held_by",
           "load_map", "save_map", "targets_for"]
