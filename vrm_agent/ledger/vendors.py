"""Finding, changing and removing a vendor and what the ledger keeps about it.

A person names a vendor the way they know it: its id in the pod, its name, its WebID or its web
site. ``find_vendor`` accepts any of them and refuses a name two vendors share rather than guess.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from urllib.parse import urlsplit

from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.records import Membership, Preference, Relationship, Vendor
from vrm_agent.ledger.store import Ledger, RecordExists, RecordNotFound
from vrm_agent.ledger.transactions import RESERVED_VENDOR_IDS, vendor_slug
from vrm_agent.ledger.transactions import vendor_key as name_key
from vrm_agent.vocabulary import RELATIONSHIP_STATES


class AmbiguousVendor(VrmAgentError):
    """A name that more than one vendor has."""


class VendorExists(RecordExists):
    """The ledger already has this vendor (same id, name, WebID or web site)."""


class VendorInUse(VrmAgentError):
    """A vendor that cannot be removed as things stand (purchases, access in force)."""


def match_vendor(vendors: Sequence[Vendor], key: str) -> Vendor | None:
    """Pure: the vendor ``key`` names (id, WebID, web site, or name), None when none does."""
    for vendor in vendors:
        if key == vendor.id:
            return vendor
    same_iri = [v for v in vendors if key in (v.webid, v.url)]
    if len(same_iri) == 1:
        return same_iri[0]
    named = [v for v in vendors if name_key(v.name) == name_key(key)]
    if len(named) > 1 or len(same_iri) > 1:
        found = named or same_iri
        raise AmbiguousVendor(
            f"{key!r} names {len(found)} vendors ({', '.join(v.id for v in found)}); "
            "use the id")
    return named[0] if named else None


async def find_vendor(ledger: Ledger, key: str) -> Vendor:
    vendor = match_vendor(await ledger.list(Vendor), key)
    if vendor is None:
        raise RecordNotFound(f"no vendor {key!r} in your ledger (`vrm-agent vendors` lists them)")
    return vendor


@dataclass(frozen=True)
class VendorChange:
    """What to change; None leaves a field as it is, "" clears the web site or WebID."""

    name: str | None = None
    url: str | None = None
    webid: str | None = None
    state: str | None = None
    signal: bool | None = None  # the person's r-button for this vendor: on, off, or unchanged


async def change_vendor(
    ledger: Ledger, key: str, change: VendorChange, *, person: str,
) -> tuple[Vendor, Relationship]:
    """Apply ``change`` to the vendor and its relationship; both are validated before either
    is written, and a WebID or web site another vendor has is refused (they identify it)."""
    vendors = await ledger.list(Vendor)
    vendor = match_vendor(vendors, key)
    if vendor is None:
        raise RecordNotFound(f"no vendor {key!r} in your ledger (`vrm-agent vendors` lists them)")
    if change.state is not None and change.state not in RELATIONSHIP_STATES:
        raise VrmAgentError(f"state {change.state!r} is not one of "
                            f"{', '.join(RELATIONSHIP_STATES)}")
    fields: dict[str, str | None] = {}
    if change.name is not None:
        fields["name"] = change.name.strip()
    for field in ("url", "webid"):
        value = getattr(change, field)
        if value is not None:
            fields[field] = value or None
            holder = next((v for v in vendors if v.id != vendor.id and value
                           and getattr(v, field) == value), None)
            if holder is not None:
                what = "WebID" if field == "webid" else "web site"
                raise VrmAgentError(f"{holder.name} ({holder.id}) already has the {what} "
                                    f"{value}; one vendor per {what}")
    updated = replace(vendor, **fields)  # type: ignore[arg-type]

    def changed(found: Relationship | None) -> Relationship:
        relationship = found or Relationship(vendor.id, "prospect", since=date.today(),
                                             initiated_by=person)
        if change.state is not None:
            relationship = replace(relationship, state=change.state)
        if change.signal is not None:
            relationship = replace(relationship, person_signal=change.signal)
        return relationship

    # Build both graphs first: a bad value fails here, before anything is written.
    updated.to_graph(ledger.layout)
    changed(None).to_graph(ledger.layout)
    if updated != vendor:
        await ledger.update(updated)
    # Conditional on the record as read: the vendor's side, reported meanwhile, is kept.
    relationship = await ledger.change(Relationship, vendor.id, changed)
    return updated, relationship


@dataclass(frozen=True)
class Removal:
    vendor: Vendor
    memberships: tuple[str, ...]
    preferences: tuple[str, ...]
    purchases_removed: bool


async def remove_vendor(
    ledger: Ledger, key: str, *, with_purchases: bool = False,
    holders: Sequence[str] = (),
) -> Removal:
    """Remove the vendor, its relationship, and the memberships and preferences that name it.

    Refused while the vendor's WebID is in ``holders`` (agents with access in force: revoke
    first), and while purchases are on file unless ``with_purchases``. What names the vendor
    goes first and the vendor record last, so an interrupted removal can be run again.
    """
    vendor = await find_vendor(ledger, key)
    if vendor.webid and vendor.webid in holders:
        raise VendorInUse(f"{vendor.name} still has access to your data; revoke it first "
                          "(`vrm-agent grants` lists it)")
    purchases = ledger.layout.transactions(vendor.id)
    try:
        chunks = await ledger.pod.list_container(purchases)
    except NotFound:
        chunks = []
    if chunks and not with_purchases:
        raise VendorInUse(f"{vendor.name} has purchases on file; remove them too with "
                          "--with-purchases, or keep the vendor")
    memberships, preferences = await asyncio.gather(ledger.list(Membership),
                                                    ledger.list(Preference))
    mine_m = [m.id for m in memberships if m.vendor_id == vendor.id]
    mine_p = [p.id for p in preferences if p.vendor_id == vendor.id]
    if chunks:
        await ledger.pod.delete_recursive(purchases)
    else:
        with contextlib.suppress(NotFound):
            await ledger.pod.delete(purchases)
    for kind, ids in ((Membership, mine_m), (Preference, mine_p)):
        for record_id in ids:
            with contextlib.suppress(RecordNotFound):
                await ledger.delete(kind, record_id)  # type: ignore[type-var]
    with contextlib.suppress(RecordNotFound):
        await ledger.delete(Relationship, vendor.id)
    await ledger.delete(Vendor, vendor.id)
    return Removal(vendor, tuple(mine_m), tuple(mine_p), bool(chunks))


def identity_clash(vendors: Sequence[Vendor], candidate: Vendor) -> Vendor | None:
    """Pure: the vendor already in ``vendors`` that ``candidate`` would duplicate: the same id,
    WebID, web site, or name."""
    for vendor in vendors:
        if vendor.id == candidate.id or (candidate.webid and vendor.webid == candidate.webid) \
                or (candidate.url and vendor.url == candidate.url) \
                or name_key(vendor.name) == name_key(candidate.name):
            return vendor
    return None


async def add_vendor(ledger: Ledger, vendor: Vendor, relationship: Relationship) -> str:
    """Record a new vendor and the relationship; refused when the ledger already has it under
    any of the things that identify a vendor, so two records never split one vendor."""
    if vendor.id in RESERVED_VENDOR_IDS:
        raise VrmAgentError(f"the id {vendor.id!r} is kept for your loyalty statement to every "
                            "vendor; choose another --id")
    clash = identity_clash(await ledger.list(Vendor), vendor)
    if clash is not None:
        raise VendorExists(f"{clash.name} is already in your ledger as {clash.id}; change it "
                           f"with `vrm-agent vendors set {clash.id} ...`")
    try:
        url = await ledger.create(vendor)
    except RecordExists:
        raise VendorExists(f"a vendor with id {vendor.id} exists; choose another --id") from None
    await ledger.save(relationship)
    return url


def agent_name(webid: str) -> str:
    """A name for a vendor known only by its agent's WebID: its host, and the first path
    segment where a server hosts many accounts by path (``pods.example/acme``)."""
    parts = urlsplit(webid)
    first = parts.path.strip("/").split("/", 1)[0]
    return parts.netloc + (f"/{first}" if first and first not in ("profile", "card") else "")


async def vendor_for_agent(ledger: Ledger, webid: str, *, since: date) -> str:
    """The id of the vendor whose agent is ``webid``; when the ledger has none, a vendor record
    (named from the WebID, never from what the vendor says of itself) and a relationship
    (a prospect, started by the vendor) are made."""
    vendors = await ledger.list(Vendor)
    known = next((v for v in vendors if v.webid == webid), None)
    if known is not None:
        return known.id
    name = agent_name(webid)
    base = vendor_slug(name)
    taken = {v.id for v in vendors} | RESERVED_VENDOR_IDS
    digest = hashlib.sha256(webid.encode()).hexdigest()[:8]
    for candidate in (base, f"{base}-{digest}"):
        if candidate in taken:
            continue
        try:
            await ledger.create(Vendor(candidate, name, webid=webid))
        except RecordExists:
            # Made meanwhile: by another process for the same agent (then it is this vendor),
            # or for another vendor (then try the next id).
            with contextlib.suppress(RecordNotFound, VrmAgentError):
                if (await ledger.get(Vendor, candidate)).webid == webid:
                    return candidate
            continue
        with contextlib.suppress(RecordExists):
            await ledger.create(Relationship(candidate, "prospect", since=since,
                                             initiated_by=webid))
        return candidate
    raise VendorExists(f"no free id for the vendor {webid} (tried {base})")
