"""The ledger in a real pod (WAC and ACP): records, validation, bulk import."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from rdflib import Graph

from tests.conftest import PodEnv
from vrm_agent.errors import NotFound
from vrm_agent.ledger.importing import TransactionImporter
from vrm_agent.ledger.records import (
    ContactUnit,
    Membership,
    Preference,
    Relationship,
    Vendor,
)
from vrm_agent.ledger.store import (
    CHANGE_ATTEMPTS,
    Ledger,
    RecordBusy,
    RecordExists,
    RecordNotFound,
)
from vrm_agent.ledger.transactions import parse_rows
from vrm_agent.pod import PodClient
from vrm_agent.vocabulary import SCHEMA
from vrm_agent.vocabulary.validation import ShapeViolation

pytestmark = [pytest.mark.pod, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def ledger(alice: PodClient, pod_env: PodEnv, request: pytest.FixtureRequest) -> Ledger:
    # Each test gets its own storage-like root, so tests do not see each other's records.
    name = request.node.name.replace("[", "-").replace("]", "")
    return Ledger(alice, f"{pod_env.alice.pod}ledger-tests/{name}/")


RECORDS = [
    Vendor("acme", "ACME Corp.", url="https://acme.example/", webid="https://acme.example/#id"),
    Relationship("acme", "member", since=date(2021, 3, 4), initiated_by="https://acme.example/#id",
                 person_signal=True, vendor_signal=False, loyalty_statement="Best coffee in town"),
    Membership("acme-club", "acme", "M-123", program="ACME Club", points=Decimal("1250"),
               valid_from=date(2021, 3, 4)),
    Preference("no-paper", "receipts", "e-mail only", vendor_id="acme"),
    ContactUnit("home-email", "email", "alice@example.org", label="home"),
    ContactUnit("mobile", "phone", "+442079460000"),
    ContactUnit("home", "address", "1 Main Street", locality="Springfield", postal_code="12345",
                country="Freedonia"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
async def test_create_read_update_list_delete(ledger: Ledger, record: object) -> None:
    record_type = type(record)
    await ledger.create(record)  # type: ignore[type-var]
    assert await ledger.get(record_type, record.id) == record  # type: ignore[attr-defined]
    with pytest.raises(RecordExists):
        await ledger.create(record)  # type: ignore[type-var]
    assert record.id in await ledger.ids(record_type)  # type: ignore[attr-defined]
    assert await ledger.list(record_type) == [record]
    await ledger.delete(record_type, record.id)  # type: ignore[attr-defined]
    with pytest.raises(RecordNotFound):
        await ledger.get(record_type, record.id)  # type: ignore[attr-defined]


async def test_update_replaces_and_needs_an_existing_record(ledger: Ledger) -> None:
    await ledger.create(Relationship("bolt", "prospect"))
    await ledger.update(Relationship("bolt", "customer", since=date(2024, 1, 1)))
    assert (await ledger.get(Relationship, "bolt")).state == "customer"
    with pytest.raises(RecordNotFound):
        await ledger.update(Relationship("nobody", "customer"))


async def test_an_invalid_record_is_refused_and_nothing_is_written(
    ledger: Ledger, alice: PodClient
) -> None:
    bad = ContactUnit("broken", "email", "not an address")
    with pytest.raises(ShapeViolation) as caught:
        await ledger.create(bad)
    assert "vcard:hasEmail" in str(caught.value) or "hasEmail" in str(caught.value)
    with pytest.raises(NotFound):
        await alice.get(ledger.url_of(ContactUnit, "broken"))


def rows(count: int, vendor: str = "Shop", vendors: int = 4) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    return [(2 + i, {"date": f"202{i % 3}-0{1 + i % 9}-1{i % 9}", "vendor":
             f"{vendor} {i % vendors}", "description": f"item {i}", "amount": f"{i}.50",
             "currency": "EUR", "category": "books" if i % 2 else "food"})
            for i in range(count)]


async def count_triples(ledger: Ledger) -> int:
    total = 0
    for vendor_id in await ledger.ids(Vendor):
        container = ledger.layout.transactions(vendor_id)
        for chunk in await ledger.pod.list_container(container):
            total += len((await ledger.pod.get_graph(chunk)).graph)
    return total


async def test_import_is_idempotent(ledger: Ledger) -> None:
    parsed = parse_rows(rows(300))
    first = await TransactionImporter(ledger).run(parsed.transactions, digest="one")
    assert first.chunks_written == 12 and first.vendors_created == 4
    triples = await count_triples(ledger)
    # The same file again: nothing to do at all.
    again = await TransactionImporter(ledger).run(parsed.transactions, digest="one")
    assert again.already_complete and again.pod_writes == 0
    # The same rows under another name: written again, but nothing is added twice; each
    # purchase now also names the second import (what `import undo` needs).
    renamed = await TransactionImporter(ledger).run(parsed.transactions, digest="two")
    assert renamed.chunks_written == 12
    assert await count_triples(ledger) == triples + len(parsed.transactions)
    assert len(await ledger.list(Vendor)) == 4


async def test_an_interrupted_import_resumes(ledger: Ledger) -> None:
    parsed = parse_rows(rows(600, vendor="Store", vendors=10))  # 10 vendors x 3 years
    importer = TransactionImporter(ledger, concurrency=1)
    original = importer._write_chunk
    calls = 0

    async def failing(url: str, statements: str) -> None:
        nonlocal calls
        calls += 1
        if calls > 17:  # the pod goes away after 17 chunks (a progress record came at 16)
            raise ConnectionError("pod gone")
        await original(url, statements)

    importer._write_chunk = failing  # type: ignore[method-assign]
    import vrm_agent.ledger.importing as importing

    with pytest.raises(ConnectionError):
        await importer.run(parsed.transactions, digest="resume")
    resumed = await TransactionImporter(ledger).run(parsed.transactions, digest="resume")
    assert resumed.chunks_skipped == importing.PROGRESS_EVERY
    assert resumed.chunks_written + resumed.chunks_skipped == 30
    fresh = Ledger(ledger.pod, ledger.layout.storage + "fresh/")
    await TransactionImporter(fresh).run(parsed.transactions, digest="resume")
    assert await count_triples(ledger) == await count_triples(fresh)


async def test_a_bad_transaction_stops_the_import_before_any_write(ledger: Ledger) -> None:
    from vrm_agent.ledger.transactions import Transaction

    good = parse_rows(rows(5)).transactions
    bad = Transaction("x" * 24, date(2024, 1, 1), "Shop 0", "", Decimal(1), "EUR")
    with pytest.raises(ShapeViolation) as caught:
        await TransactionImporter(ledger).run([*good, bad], digest="bad")
    assert "description" in str(caught.value)
    assert await ledger.ids(Vendor) == set()


async def test_vendors_with_unicode_names_stay_apart_and_keep_their_ids(ledger: Ledger) -> None:
    await ledger.create(Vendor("globex", "Globex Corp"))  # added by hand, with its own id
    names = ["Bäckerei Müller", "Bäckerei Möller", "Żabka", "東京ストア", "GLOBEX  corp"]
    parsed = parse_rows([(2 + i, {"date": "2024-05-0" + str(1 + i), "vendor": name,
                                  "description": f"item {i}", "amount": "1.00",
                                  "currency": "EUR"}) for i, name in enumerate(names)])
    report = await TransactionImporter(ledger).run(parsed.transactions, digest="unicode")
    assert report.vendors_created == 4 and report.chunks_written == 5
    vendors = {v.name: v.id for v in await ledger.list(Vendor)}
    assert set(vendors) == {"Globex Corp", *names[:4]}
    assert len(set(vendors.values())) == 5
    # Each vendor's purchases are in its own container, listed back by the pod under that id.
    for name in names[:4]:
        [chunk] = await ledger.pod.list_container(ledger.layout.transactions(vendors[name]))
        graph = (await ledger.pod.get_graph(chunk)).graph
        assert len(list(graph.subjects(SCHEMA.seller, None))) == 1
    [globex] = await ledger.pod.list_container(ledger.layout.transactions("globex"))
    assert globex.endswith("/transactions/globex/2024")
    # Again, under another digest (as after an interrupted or changed file): nothing new.
    again = await TransactionImporter(ledger).run(parsed.transactions, digest="unicode-2")
    assert again.vendors_created == 0
    assert {v.id for v in await ledger.list(Vendor)} == set(vendors.values())


class Interrupted(Ledger):
    """A ledger on the real pod where someone else writes a record between change()'s read
    and its write, ``times`` times."""

    def __init__(self, ledger: Ledger, other: Relationship, times: int = 1) -> None:
        super().__init__(ledger.pod, ledger.layout.storage)
        self.other, self.times = other, times

    async def write_graph(self, url: str, graph: Graph, **conditions: str | None) -> None:
        if self.times:
            self.times -= 1
            await Ledger(self.pod, self.layout.storage).save(self.other)
        await super().write_graph(url, graph, **conditions)


async def test_a_change_is_made_on_the_record_as_someone_else_left_it(ledger: Ledger) -> None:
    """The person turns the signal off while a vendor's state is being recorded: the pod
    refuses the write made on the old read (412), the edit is made again on the new one, and
    both changes stay: the signal is not turned back on."""
    await ledger.create(Relationship("cara", "member", person_signal=True))
    seen: list[bool | None] = []

    def vendor_says_customer(found: Relationship | None) -> Relationship:
        assert found is not None
        seen.append(found.person_signal)
        return replace(found, vendor_state="customer", vendor_signal=True)

    turned_off = Relationship("cara", "member", person_signal=False)
    await Interrupted(ledger, turned_off).change(Relationship, "cara", vendor_says_customer)
    assert seen == [True, False]
    now = await ledger.get(Relationship, "cara")
    assert (now.person_signal, now.vendor_state, now.vendor_signal) == (False, "customer", True)


async def test_a_new_record_made_meanwhile_is_changed_not_replaced(ledger: Ledger) -> None:
    made = Relationship("dino", "customer", person_signal=False)
    result = await Interrupted(ledger, made).change(
        Relationship, "dino", lambda found: replace(found or Relationship("dino"),
                                                    vendor_state="member"))
    assert result == await ledger.get(Relationship, "dino")
    assert (result.state, result.person_signal, result.vendor_state) == \
        ("customer", False, "member")


async def test_a_record_that_keeps_changing_is_left_as_the_other_writer_left_it(
        ledger: Ledger) -> None:
    await ledger.create(Relationship("eve", "prospect"))
    theirs = Relationship("eve", "former", person_signal=False)
    with pytest.raises(RecordBusy, match="try again"):
        await Interrupted(ledger, theirs, times=CHANGE_ATTEMPTS).change(
            Relationship, "eve", lambda found: replace(found, state="member"))  # type: ignore[arg-type]
    assert await ledger.get(Relationship, "eve") == theirs
