"""What the agent reads back from its own containers is validated: a foreign or broken member of
``vrm/terms/`` or ``vrm/contact/`` is skipped and reported, never fatal (real CSS, a real daemon
process and the real command line)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import PodEnv, RunningAgent, new_account, run_cli, start_agent, stop_agent
from vrm_agent.errors import PodUnreachable
from vrm_agent.ledger.records import ContactUnit
from vrm_agent.ledger.store import Ledger, broken_member
from vrm_agent.ledger.terms import TermsStore
from vrm_agent.negotiation.terms import ROSTER
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.vendor import VendorAgent, request_policy

pytestmark = pytest.mark.pod

# name -> (content type, body): each is something the pod holds but no terms policy or record
JUNK = {
    "garbage": ("text/turtle", "this is @@ not turtle <<< at all"),
    "data.json": ("application/json", '{"not": "a policy"}'),
    "notes.txt": ("text/plain", "remember the milk"),
    "no-policy": ("text/turtle", "<#it> a <http://schema.org/Thing> ."),
    "ld-thing": ("application/ld+json",
                 '{"@id": "#it", "http://schema.org/name": "no policy here"}'),
}


@dataclass
class Person:
    account: PodAccount
    agent: RunningAgent


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def person(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Person]:
    account = await new_account(pod_env, "owen")
    async with PodClient(account.credentials) as pod:
        ledger = Ledger(pod, account.pod)
        # One write at a time: CSS (ACP, file backend) was seen to lose the pod root's
        # pim:Storage type when the first writes under a new pod create containers at once.
        await ledger.create(ContactUnit("email-home", "email", "owen@example.org"))
        store = TermsStore(ledger, account.webid)
        for name in ROSTER:
            await store.add_roster(name)
        for folder in ("terms", "contact"):
            for name, (content_type, body) in JUNK.items():
                await pod.put(f"{account.pod}vrm/{folder}/{name}", body,
                              content_type=content_type)
    agent = start_agent(pod_env, tmp_path_factory.mktemp(f"owen-{pod_env.flavour.value}"),
                        account=account)
    yield Person(account, agent)
    stop_agent(agent)


async def test_the_daemon_starts_and_answers_despite_junk(person: Person,
                                                          pod_env: PodEnv) -> None:
    assert person.agent.process.poll() is None
    async with PodClient(pod_env.acme.credentials) as pod:
        vendor = VendorAgent(pod)
        health = await pod.request("GET", person.agent.url + "health", authenticated=False)
        assert health.status == 200
        view = await vendor.request(await vendor.discover(person.account.webid),
                                    request_policy(["pd:EmailAddress"],
                                                   purpose="dpv:ServiceProvision"))
    # Answered, though the starter terms alone would agree: what cannot be read among the
    # terms may have forbidden it, so the person decides.
    assert view.state is not None and view.awaiting_person
    log = person.agent.log.read_text()
    warned = [json.loads(line) for line in log.splitlines()
              if line.startswith("{") and "skipped" in line]
    skipped = {entry["resource"] for entry in warned}
    assert {f"{person.account.pod}vrm/terms/{name}" for name in JUNK} <= skipped
    assert f"{person.account.pod}vrm/contact/garbage" in skipped
    assert all(entry["level"] == "warning" for entry in warned)


def cli(person: Person, *args: str) -> tuple[str, list[str]]:
    result = run_cli(*args, "--config", str(person.agent.config))
    assert result.returncode == 0, result.stderr
    return result.stdout, [line for line in result.stderr.splitlines() if line.strip()]


async def test_terms_lists_the_good_and_warns_about_the_bad(person: Person) -> None:
    out, warnings = await asyncio.to_thread(cli, person, "terms", "--json")
    names = {row["name"] for row in json.loads(out)}
    assert names == {"sd-base", "no-stalking", "no-third-parties", "no-marketing"}
    for name in JUNK:
        assert sum(f"vrm/terms/{name}:" in line for line in warnings) == 1, warnings
    assert all(line.startswith("warning: skipped ") for line in warnings), warnings


async def test_contact_lists_the_good_and_warns_about_the_bad(person: Person) -> None:
    out, warnings = await asyncio.to_thread(cli, person, "contact", "--json")
    assert [row["id"] for row in json.loads(out)] == ["email-home"]
    assert any("vrm/contact/garbage:" in line for line in warnings), warnings
    assert all(line.startswith("warning: skipped ") for line in warnings), warnings


def test_an_unreachable_pod_is_not_mistaken_for_a_broken_member() -> None:
    assert not broken_member(PodUnreachable("down", url="http://localhost:1/"))


def test_the_daemon_log_names_each_junk_member_once(person: Person) -> None:
    """The terms are read again every 10 s; a junk member is reported once, not each time."""
    lines = [line for line in Path(person.agent.log).read_text().splitlines()
             if "skipped" in line and "vrm/terms/garbage" in line]
    assert len(lines) == 1
