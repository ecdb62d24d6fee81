"""Backup and restore of everything the agent keeps, on real CSS (WAC and ACP): a person with
records, a bank import, real negotiations (agreed and countersigned, refused, waiting for her,
revoked) and a plain share is exported to a file and restored into a second, empty pod. Each
resource comes back isomorphic once the storage IRI is set aside; the grants in force are in force
again on the new pod, proved by the vendors' own requests, and the ended one stays ended. Every
record the agent wrote meets the vocabulary's shapes, each kind targeted by a shape of its own.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from rdflib import RDF, Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import PROV, SH
from rdflib.term import Node

from tests.conftest import PodEnv, new_account, new_accounts
from vrm_agent.access.index import GrantView, entry_graph, shard_name
from vrm_agent.access.model import AccessMode
from vrm_agent.access.service import AccessControl
from vrm_agent.daemon.negotiations import NegotiationService
from vrm_agent.daemon.notify import Notifier
from vrm_agent.integrity import SigningKey
from vrm_agent.ledger.exchange import (
    STORED_AS,
    ExchangeError,
    export_ledger,
    ledger_resources,
    read_export,
    restore_ledger,
    write_export,
)
from vrm_agent.ledger.importing import TransactionImporter
from vrm_agent.ledger.records import ContactUnit, Membership, Preference, Relationship, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.ledger.transactions import parse_rows
from vrm_agent.negotiation.protocol import Negotiation, Role, State
from vrm_agent.negotiation.wire import Message
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import NegotiationView, VendorAgent, request_policy
from vrm_agent.vocabulary import SCHEMA, VRM, shapes_graph
from vrm_agent.vocabulary.validation import validate

pytestmark = [pytest.mark.pod, pytest.mark.asyncio(loop_scope="session")]
AGENT_URL = "http://localhost:8750/"
VRMP = "https://w3id.org/vrm-agent/protocol#"
NEUTRAL = "http://storage.example/"


@dataclass
class Backup:
    person: PodAccount
    shop: PodAccount  # its agreement is in force
    rival: PodAccount  # its agreement was revoked; a plain share to it is in force
    email: str
    purchases: str  # a container shared with its members
    agreed: str  # negotiation ids
    revoked: str
    file: Path
    signing_key: SigningKey


def service_for(pod: PodClient, account: PodAccount, key: SigningKey) -> NegotiationService:
    access = AccessControl(pod, owner_webid=account.webid, storage=account.pod)
    notifier = Notifier(key, storage=account.pod, agent_url=AGENT_URL, issuer=pod.issuer)
    return NegotiationService(pod, owner=account.webid, storage=account.pod, agent_url=AGENT_URL,
                              signing_key=key, access=access, notifier=notifier)


def ask(purpose: str, days: int = 7) -> Message:
    return Message("ContractRequestMessage", policy=request_policy(
        ["pd:EmailAddress"], purpose=purpose, duration=timedelta(days=days)))


async def countersigned(service: NegotiationService, vendor: str, negotiation_id: str,
                        key: SigningKey) -> None:
    record = await service.load(negotiation_id)
    view = NegotiationView(record.url, Negotiation("", Role.CONSUMER, State.AGREED),
                           agreement=record.agreement, agent_key=key.verification_method)
    finished = await service.verify(negotiation_id, vendor,
                                    VendorAgent(pod=None).countersign(view))  # type: ignore[arg-type]
    assert finished.state is State.FINALIZED


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def backup(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Backup]:
    person, shop, rival = (await new_accounts(pod_env.server, "erin", "erin-shop",
                                              "erin-rival")).values()
    key = SigningKey()
    async with PodClient(person.credentials) as pod:
        ledger = Ledger(pod, person.pod)
        email = await ledger.create(ContactUnit("email-home", "email", "erin@example.org"))
        await ledger.create(ContactUnit("home", "address", "1 Main Street",
                                        locality="Springfield", country="Freedonia"))
        for vendor_id, account in (("erin-shop", shop), ("erin-rival", rival)):
            name = vendor_id.replace("-", " ").title()  # "Erin Shop", as the bank writes it
            await ledger.create(Vendor(vendor_id, name, webid=account.webid))
            await ledger.create(Relationship(vendor_id, "customer", since=date(2024, 1, 2)))
        await ledger.create(Membership("club", "erin-shop", "M-1", program="Club",
                                       points=Decimal("12")))
        await ledger.create(Preference("paperless", "receipts", "e-mail only"))
        rows = [(2 + i, {"date": f"2024-0{1 + i % 9}-1{i % 9}", "vendor": "Erin Shop",
                         "description": f"item {i}", "amount": f"{i}.50", "currency": "EUR"})
                for i in range(20)]
        await TransactionImporter(ledger).run(parse_rows(rows).transactions, digest="bank")
        purchases = ledger.layout.transactions("erin-shop")

        service = service_for(pod, person, key)
        agreed = await service.request(shop.webid, ask("dpv:DeliveryOfGoods"))
        assert agreed.state is State.AGREED
        await countersigned(service, shop.webid, agreed.id, key)
        refused = await service.request(shop.webid, ask("dpv:DirectMarketing"))
        assert refused.state is State.TERMINATED
        waiting = await service.request(shop.webid, ask("dpv:ResearchAndDevelopment"))
        assert waiting.negotiation.awaiting_person
        revoked = await service.request(rival.webid, ask("dpv:DeliveryOfGoods", days=3))
        await countersigned(service, rival.webid, revoked.id, key)
        await service.revoke(revoked.id)
        await service.access.grant(rival.webid, [purchases], ["Read"], members=True,
                                   until=datetime.now(UTC) + timedelta(days=30))
        await service.flush()
        await service.access.flush()

        file = tmp_path_factory.mktemp(f"backup-{pod_env.flavour.value}") / "erin.trig"
        write_export(await export_ledger(ledger), file)
    yield Backup(person, shop, rival, email, purchases, agreed.id, revoked.id, file, key)


def neutral_graphs(dataset: Dataset, *storages: str) -> dict[str, Graph]:
    """Each resource's graph with these storages' IRIs set to one neutral storage: a restore
    moves IRIs to its storage, and leaves the old one in what was signed."""
    def moved(term: Node) -> Node:
        for storage in storages:
            if isinstance(term, URIRef) and str(term).startswith(storage):
                return URIRef(NEUTRAL + str(term)[len(storage):])
        return term

    out = {}
    for graph in dataset.graphs():
        if graph.identifier == dataset.default_graph.identifier or not len(graph):
            continue
        neutral = Graph()
        for triple in graph:
            neutral.add(tuple(moved(t) for t in triple))  # type: ignore[arg-type]
        out[str(moved(graph.identifier))] = neutral
    return out


async def status(client: PodClient, url: str) -> int:
    return (await client.request("GET", url, expect_ok=False)).status


async def test_a_restore_gives_back_everything_and_the_grants_in_force(
        pod_env: PodEnv, backup: Backup) -> None:
    target = await new_account(pod_env, "erin-moved")
    source = backup.person.pod
    dataset = read_export(backup.file)
    async with PodClient(target.credentials) as pod:
        ledger = Ledger(pod, target.pod)
        report = await restore_ledger(ledger, dataset, owner=target.webid, grant_again=True)
        assert report.grants == 2 and report.ended_grants == 0 and not report.dropped_grants
        assert not report.not_granted
        with pytest.raises(ExchangeError, match="already holds a ledger"):
            await restore_ledger(ledger, dataset, owner=target.webid)
        restored = await export_ledger(ledger)
        # The restored negotiation is the agent's own record again, readable as it was.
        service = service_for(pod, target, backup.signing_key)
        record = await service.load(backup.agreed)
        assert record.state is State.FINALIZED and record.agreement is not None
        assert [r.replace(target.pod, source) for a in record.access for r in a.resources] \
            == [backup.email]
        assert record.agreement["grant"][0]["resource"] == [backup.email]  # as signed

    before = neutral_graphs(dataset, source)
    after = neutral_graphs(restored, target.pod, source)
    assert before.keys() == after.keys()
    kinds = {name.split("/vrm/", 1)[1].split("/", 1)[0] for name in before}
    assert {"vendors", "relationships", "memberships", "preferences", "contact",
            "transactions", "imports", "terms", "negotiations", "agreements", "audit",
            "grant-index", "categories"} <= kinds
    for name in before:
        assert isomorphic(before[name], after[name]), name
    stored = {str(s).replace(source, NEUTRAL) for s in dataset.default_graph.subjects(STORED_AS)}
    assert {str(s).replace(target.pod, NEUTRAL)
            for s in restored.default_graph.subjects(STORED_AS)} == stored

    moved_email = backup.email.replace(source, target.pod)
    member = next(r for r in after if r.startswith(NEUTRAL + "vrm/transactions/erin-shop/"))
    moved_member = member.replace(NEUTRAL, target.pod)
    async with PodClient(backup.shop.credentials) as shop, \
            PodClient(backup.rival.credentials) as rival:
        assert await status(shop, moved_email) == 200  # the agreement in force
        assert await status(rival, moved_email) == 403  # the revoked one stays ended
        assert await status(rival, moved_member) == 200  # the share, with its members
        assert await status(shop, moved_member) == 403


async def test_a_bad_file_leaves_the_pod_as_it_was(pod_env: PodEnv, backup: Backup,
                                                   tmp_path: Path) -> None:
    target = await new_account(pod_env, "erin-spared")
    source = backup.person.pod
    nameless = read_export(backup.file)
    vendor = URIRef(f"{source}vrm/vendors/erin-shop")
    nameless.graph(vendor).remove((None, SCHEMA.name, None))
    broken_record = read_export(backup.file)
    record = URIRef(f"{source}vrm/negotiations/{backup.agreed}")
    broken_record.default_graph.set((record, STORED_AS, Literal('{"state": "FINALIZED"}')))
    foreign = read_export(backup.file)
    foreign.graph(URIRef("http://elsewhere.example/vrm/x")).add(
        (URIRef("http://elsewhere.example/vrm/x#it"), RDF.type, VRM.Vendor))
    # Names that a client would resolve out of vrm/ (the root's access-control document), or
    # that are access-control documents themselves, are never written from a file.
    climbing, percent, acl = (read_export(backup.file) for _ in range(3))
    for dataset, name in ((climbing, "vrm/terms/../../.acl"),
                          (percent, "vrm/terms/%2e%2e/%2e%2e/profile/card"),
                          (acl, "vrm/.acl")):
        dataset.graph(URIRef(source + name)).add(
            (URIRef(source + name + "#x"), RDF.type, VRM.Vendor))
    async with PodClient(target.credentials) as pod:
        ledger = Ledger(pod, target.pod)
        for dataset, problem in ((nameless, "erin-shop is not a valid record"),
                                 (broken_record, "is not a readable negotiation record"),
                                 (foreign, "is not a ledger resource"),
                                 (climbing, "is not a ledger resource"),
                                 (percent, "is not a ledger resource"),
                                 (acl, "is not a ledger resource")):
            with pytest.raises(ExchangeError, match=problem):
                await restore_ledger(ledger, dataset, owner=target.webid)
        assert await ledger_resources(ledger) == []


# What each kind of resource must hold, and the shape that checks it.
KINDS = {
    "vendors": VRM.Vendor, "relationships": VRM.Relationship,
    "memberships": SCHEMA.ProgramMembership, "preferences": VRM.Preference,
    "transactions": VRM.TransactionChunk, "imports": PROV.Activity,
    "terms": VRM.PersonalTerms, "negotiations": URIRef(VRMP + "NegotiationRecord"),
    "agreements": VRM.AgreementRecord, "audit": VRM.AuditEvent, "grant-index": None,
    "categories": VRM.DataCategoryMapping,
}
CONTACT = {VRM.EmailUnit, VRM.PostalAddressUnit, VRM.TelephoneUnit}


async def test_every_record_the_agent_wrote_meets_its_shape(backup: Backup) -> None:
    dataset = read_export(backup.file)
    targeted = set(shapes_graph().objects(None, SH.targetClass))
    checked = set()
    for url, graph in neutral_graphs(dataset, backup.person.pod).items():
        kind = url.split("/vrm/", 1)[1].split("/", 1)[0]
        types = set(graph.objects(None, RDF.type))
        wanted = CONTACT & types if kind == "contact" else {KINDS[kind]}
        if kind == "grant-index":  # a shard whose grants have all ended keeps only places
            wanted = {VRM.Grant} & types
        assert wanted <= types and wanted <= targeted, (url, types)
        validate(graph)  # pyshacl, every constraint
        checked |= {kind} if wanted else set()
        assert not any(str(t).startswith("https://schema.org/") for triple in graph
                       for t in triple), url
    assert checked >= set(KINDS) | {"contact"}
    stored = [json.loads(str(o)) for o in dataset.default_graph.objects(None, STORED_AS)]
    assert {r["state"] for r in stored} >= {"FINALIZED", "TERMINATED", "REQUESTED"}


async def test_an_ended_entry_is_left_to_the_expiry_pass_and_a_grant_off_the_file_is_named(
        pod_env: PodEnv, backup: Backup) -> None:
    target = await new_account(pod_env, "erin-late")
    source = backup.person.pod
    dataset = read_export(backup.file)
    read = frozenset({AccessMode.READ})
    past = datetime.now(UTC) - timedelta(hours=1)
    later = datetime.now(UTC) + timedelta(days=1)
    entries = {"late": GrantView("late", backup.shop.webid, (backup.email,), read, past, False,
                                 None, past - timedelta(days=1)),
               "elsewhere": GrantView("elsewhere", backup.shop.webid, (source + "notes/x",),
                                      read, later, False, None, past)}
    for grant_id, view in entries.items():
        shard = f"{source}vrm/grant-index/{shard_name(grant_id)}"
        named = dataset.graph(URIRef(shard))
        for triple in entry_graph(shard, view, {}):
            named.add(triple)
    async with PodClient(target.credentials) as pod:
        report = await restore_ledger(Ledger(pod, target.pod), dataset, owner=target.webid,
                                      grant_again=True)
        assert report.grants == 2 and report.ended_grants == 1
        assert report.dropped_grants == ("elsewhere",)
        access = AccessControl(pod, owner_webid=target.webid, storage=target.pod)
        assert {"late", backup.agreed} <= set((await access.index()).entries)
        assert "elsewhere" not in (await access.index()).entries
        ended, _ = await access.expire_due()
        await access.flush()
        assert [v.id for v in ended] == ["late"]
        assert "late" not in (await access.index(fresh=True)).entries


async def test_a_file_opens_nothing_unless_asked_and_then_only_what_it_agreed(
        pod_env: PodEnv, backup: Backup) -> None:
    """A backup may come from anywhere. Without --grant-again nothing is granted; with it, an
    entry no restored agreement in force carries (a forged one, for the whole storage) is not."""
    source = backup.person.pod
    quiet = await new_account(pod_env, "erin-quiet")
    async with PodClient(quiet.credentials) as pod:
        report = await restore_ledger(Ledger(pod, quiet.pod), read_export(backup.file),
                                      owner=quiet.webid)
        assert report.grants == 0 and len(report.not_granted) == 2
    async with PodClient(backup.shop.credentials) as shop:
        assert await status(shop, backup.email.replace(source, quiet.pod)) == 403

    forged_file = read_export(backup.file)
    later = datetime.now(UTC) + timedelta(days=1)
    read = frozenset({AccessMode.READ})
    forged = {"root": GrantView("root", backup.rival.webid, (source,), read, later, True,
                                None, datetime.now(UTC)),
              "claimed": GrantView("claimed", backup.rival.webid, (backup.email,), read,
                                   later, False, f"http://agent.example/negotiations/"
                                   f"{backup.agreed}", datetime.now(UTC))}
    for grant_id, view in forged.items():
        shard = f"{source}vrm/grant-index/{shard_name(grant_id)}"
        named = forged_file.graph(URIRef(shard))
        for triple in entry_graph(shard, view, {}):
            named.add(triple)
    target = await new_account(pod_env, "erin-forged")
    async with PodClient(target.credentials) as pod:
        report = await restore_ledger(Ledger(pod, target.pod), forged_file,
                                      owner=target.webid, grant_again=True)
        # The storage root is never granted; an agreement of another vendor carries nothing.
        assert {"root", "claimed"} <= set(report.not_granted) | set(report.dropped_grants)
    async with PodClient(backup.rival.credentials) as rival:
        # Read as the pod gives it to anyone else (the quiet pod, restored without grants).
        assert await status(rival, target.pod + "vrm/") == await status(rival, quiet.pod + "vrm/")
        assert await status(rival, backup.email.replace(source, target.pod)) == 403
