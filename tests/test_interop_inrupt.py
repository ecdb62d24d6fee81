"""A vendor on the standard Solid client library negotiates with the agent: every call it makes
(the person's profile, discovery, the request, the countersignature, the read of what it was
granted) goes through Inrupt's ``@inrupt/solid-client-authn-node`` 4.0.0 ``session.fetch``,
installed from the pinned lockfile in ``benchmarks/inrupt/``, against a real ``vrm-agent run``
on real CSS (WAC and ACP). Inrupt's DPoP proofs carry no ``ath``; the pod accepts them, and so
must the agent (docs/protocol.md §3.1)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio
from multidict import CIMultiDict, CIMultiDictProxy

from benchmarks.inrupt_driver import InruptDriver
from tests.conftest import PodEnv, RunningAgent, new_accounts, start_agent, stop_agent
from vrm_agent.ledger.records import ContactUnit
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.protocol import State
from vrm_agent.pod.client import PodClient, PodResponse
from vrm_agent.pod.links import Links
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import VendorAgent, request_policy

pytestmark = [
    pytest.mark.pod,
    pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None,
                       reason="Node.js and npm are needed to run Inrupt's client library"),
]


class InruptPod(PodClient):
    """A pod client whose every request is sent by Inrupt's ``session.fetch`` (which adds its
    own Authorization and DPoP headers), so the vendor side speaks through that library."""

    def __init__(self, driver: InruptDriver) -> None:
        super().__init__()
        self.driver = driver
        self.sent: list[tuple[str, str, int]] = []

    async def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                      body: bytes | str | None = None, authenticated: bool = True,
                      expect_ok: bool = True) -> PodResponse:
        data = body.encode("utf-8") if isinstance(body, str) else body
        fetched = await self.driver.fetch(method.upper(), url, headers, data)
        answered = CIMultiDictProxy(CIMultiDict(fetched.headers))
        response = PodResponse(method.upper(), fetched.url, fetched.status, answered,
                               fetched.body, Links.parse(answered.getall("Link", []),
                                                         fetched.url))
        self.sent.append((method.upper(), url, fetched.status))
        if expect_ok:
            self.raise_for_status(response)
        return response


@dataclass
class Shop:
    person: PodAccount
    vendor: PodAccount
    agent: RunningAgent
    email: str


@pytest.fixture(scope="module")
def shop(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    import asyncio

    async def set_up() -> tuple[PodAccount, PodAccount, str]:
        person, vendor = (await new_accounts(pod_env.server, "dana", "inrupt-shop")).values()
        async with PodClient(person.credentials) as pod:
            email = await Ledger(pod, person.pod).create(
                ContactUnit("email-home", "email", "dana@example.org"))
        return person, vendor, email

    person, vendor, email = asyncio.run(set_up())
    agent = start_agent(pod_env, tmp_path_factory.mktemp("dana"), account=person)
    yield Shop(person, vendor, agent, email)
    stop_agent(agent)


@pytest_asyncio.fixture(loop_scope="session")
async def inrupt_vendor(shop: Shop) -> AsyncIterator[tuple[VendorAgent, InruptPod]]:
    async with InruptDriver() as driver:
        await driver.login(shop.vendor.credentials)
        async with InruptPod(driver) as pod:
            yield VendorAgent(pod), pod


async def test_a_vendor_on_inrupts_client_negotiates_and_reads(
        shop: Shop, inrupt_vendor: tuple[VendorAgent, InruptPod]) -> None:
    vendor, pod = inrupt_vendor
    info = await vendor.discover(shop.person.webid)
    assert info.url == shop.agent.url
    policy = request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                            duration=timedelta(days=1))
    view = await vendor.request(info, policy)
    assert view.state is State.AGREED, view.document
    assert view.resources == [shop.email]
    view = await vendor.verify(view)
    assert view.state is State.FINALIZED
    read = await vendor.read(shop.email)
    assert read.status == 200 and b"dana@example.org" in read.body
    # Every call above was Inrupt's, the agent's included.
    to_agent = [(m, u, s) for m, u, s in pod.sent if u.startswith(shop.agent.url)]
    assert [m for m, _, _ in to_agent].count("POST") >= 2, pod.sent
    assert all(s < 400 for _, _, s in to_agent), to_agent
