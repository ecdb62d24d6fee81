"""The audit log and the data-category map in a real pod (WAC and ACP)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from tests.conftest import PodEnv
from vrm_agent.ledger.audit import AuditEvent, AuditLog, AuditWriter
from vrm_agent.ledger.categories import Target, load_map, save_map, targets_for
from vrm_agent.ledger.records import ContactUnit, Preference
from vrm_agent.ledger.store import Ledger
from vrm_agent.pod import PodClient
from vrm_agent.vocabulary import PD

pytestmark = [pytest.mark.pod, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture
def ledger(alice: PodClient, pod_env: PodEnv, request: pytest.FixtureRequest) -> Ledger:
    name = request.node.name.replace("[", "-").replace("]", "")
    return Ledger(alice, f"{pod_env.alice.pod}audit-tests/{name}/")


async def test_concurrent_appends_all_land(ledger: Ledger, pod_env: PodEnv) -> None:
    log = AuditLog(ledger.pod, ledger.layout)
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    events = [AuditEvent("AccessGranted", at=moment, vendor=pod_env.acme.webid,
                         resources=[f"{ledger.layout.root}x{i}"], description=f"grant {i}")
              for i in range(20)]
    await asyncio.gather(*(log.append(e) for e in events))
    read = await log.events(moment)
    assert sorted(e["description"] for e in read) == sorted(f"grant {i}" for i in range(20))
    assert {e["type"] for e in read} == {"AccessGranted"}
    with pytest.raises(ValueError, match="unknown audit event type"):
        await log.append(AuditEvent("Nonsense"))


async def test_the_writer_folds_what_queues_up_into_few_patches(ledger: Ledger,
                                                                pod_env: PodEnv) -> None:
    writer = AuditWriter(AuditLog(ledger.pod, ledger.layout))
    first, second = (datetime(2026, 5, d, 12, 0, tzinfo=UTC) for d in (2, 3))
    patches = ledger.pod.request_counts["PATCH"]
    for i in range(30):  # added at once, as 30 answers would; nobody waits for the pod
        writer.add(AuditEvent("AccessGranted", at=first if i < 20 else second,
                              vendor=pod_env.acme.webid, description=f"grant {i}"))
    writer.add(AuditEvent("Nonsense"))  # a bad event is logged and lost, not raised
    await writer.flush()
    assert ledger.pod.request_counts["PATCH"] - patches <= 3  # not 30
    assert writer.lost >= 1
    log = AuditLog(ledger.pod, ledger.layout)
    assert len(await log.events(first)) == 20 and len(await log.events(second)) == 10


async def test_categories_map_to_the_vendors_own_resources(ledger: Ledger) -> None:
    await ledger.create(ContactUnit("work", "email", "alice@work.example"))
    await ledger.create(Preference("paper", "receipts", "none"))
    await save_map(ledger)
    mapping = await load_map(ledger)
    assert targets_for(mapping, str(PD.EmailAddress), "acme", ledger) == [
        Target(ledger.url_of(ContactUnit, "work"))]
    assert targets_for(mapping, str(PD.Purchase), "acme", ledger) == [
        Target(ledger.layout.transactions("acme"), members=True)]
    assert targets_for(mapping, str(PD.TelephoneNumber), "acme", ledger) == []
