"""What a vendor may ask for by URL: a resource inside the person's storage and outside the
agent's own ``vrm/`` records. Targets that leave the storage (another pod on the same server),
that spell the agent's records another way, or that name the storage root (or any container
holding ``vrm/``) are refused at once: never put to the person, never granted.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from tests.security.conftest import (
    REFUSAL_TRACES,
    Attacker,
    Victim,
    allowed,
    research,
    settle,
    snapshot,
    unexpected,
)

pytestmark = pytest.mark.pod


def escaping_targets(victim: Victim) -> dict[str, str]:
    """Another pod on the same server (bolt's), reached from the person's storage."""
    pod = victim.pod
    return {
        "dot dot": pod + "../bolt/",
        "dot dot to a document": pod + "../bolt/profile/card",
        "percent-encoded dots": pod + "%2e%2e/bolt/",
        "percent-encoded dots, upper case": pod + "%2E%2E/bolt/",
        "dots after a folder": pod + "notes/../../bolt/",
        "single and double dots": pod + "./../bolt/",
        "encoded slash": pod + "..%2fbolt/",
        "all encoded": pod + "%2e%2e%2fbolt%2f",
        "another server": "http://example.org/victim/notes/diary",
        "file": "file:///etc/passwd",
        "urn": "urn:example:diary",
    }


def records_spelled_otherwise(victim: Victim) -> dict[str, str]:
    """The agent's own records (and other vendors' purchases), spelled so that a plain prefix
    check of the storage and of ``vrm/`` misses them."""
    pod = victim.pod
    parts = urlsplit(pod)
    return {
        "dot segment before vrm": pod + "./vrm/negotiations/",
        "folder and dot dot before vrm": pod + "notes/../vrm/terms/",
        "percent-encoded dot": pod + "%2e/vrm/negotiations/",
        "encoded slash in vrm": pod + "vrm%2Fnegotiations/",
        "upper-case host": f"http://LOCALHOST:{parts.port}{parts.path}vrm/negotiations/",
        "double slash": pod + "/vrm/negotiations/",
        "another vendor's purchases, dotted": pod + "notes/../vrm/transactions/bolt/",
        "the access-control document of the root": pod + ".acl",
        "the access control of a resource (WAC)": pod + "notes/diary.acl",
        "the access control of a resource (ACP)": pod + "notes/diary.acr",
        "a description resource": pod + "notes/diary.meta",
        "a resource with userinfo": pod.replace("://", "://person@") + "notes/diary",
        "a resource with a fragment": pod + "notes/diary#today",
    }


def root_and_containers(victim: Victim) -> dict[str, str]:
    pod = victim.pod
    return {
        "storage root": pod,
        "storage root without slash": pod.rstrip("/"),
        "storage root with a query": pod + "?all",
        "vrm": pod + "vrm/",
        "transactions of every vendor": pod + "vrm/transactions/",
    }


async def ask(attacker: Attacker, victim: Victim, target: str) -> tuple[str, str | None]:
    """How the agent answers a request for ``target``: 'refused' (a problem document, or the
    terms refuse it), 'asked' (put to the person), or what else it did; and the negotiation."""
    answer = await attacker.request(victim, research(target))
    if answer.status >= 400:
        return ("refused" if answer.is_problem() and answer.status < 500
                else f"{answer.status}"), None
    body = answer.json or {}
    if answer.status == 202:
        return "asked", str(body.get("id"))
    return ("refused" if body.get("state") == "TERMINATED" else f"{body.get('state')}"), \
        str(body.get("id"))


async def test_targets_outside_the_storage_are_refused_not_put_to_the_person(
        victim: Victim, attacker: Attacker) -> None:
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    outcome = {name: (await ask(attacker, victim, target))[0]
               for name, target in escaping_targets(victim).items()}
    await settle()
    after = await snapshot(owner, victim.pod)
    await owner.close()
    wrong = {name: how for name, how in outcome.items() if how != "refused"}
    assert not wrong, f"not refused: {json.dumps(wrong, indent=1)}"
    assert not unexpected(before, after, allowed(victim, *REFUSAL_TRACES))
    assert await attacker.reads(victim.diary) == 403


async def test_the_agents_records_spelled_otherwise_are_refused(
        victim: Victim, attacker: Attacker) -> None:
    outcome = {}
    for name, target in records_spelled_otherwise(victim).items():
        how, negotiation = await ask(attacker, victim, target)
        outcome[name] = how
        if how == "asked":  # the person, trusting the agent's check, approves it
            assert negotiation is not None
            result = await asyncio.to_thread(victim.cli, "requests", "approve",
                                             negotiation.rsplit("/", 1)[-1])
            outcome[name] += f", approved (exit {result.returncode})"
    reads = {place: await attacker.reads(victim.pod + place)
             for place in ("vrm/negotiations/", "vrm/terms/", "vrm/terms/sd-base",
                           "vrm/transactions/bolt/", "vrm/transactions/bolt/2026")}
    assert all(status == 403 for status in reads.values()), f"{reads}; {outcome}"
    wrong = {name: how for name, how in outcome.items() if how != "refused"}
    assert not wrong, f"not refused: {json.dumps(wrong, indent=1)}"


async def test_the_storage_root_and_containers_holding_vrm_are_never_granted(
        victim: Victim, attacker: Attacker) -> None:
    outcome = {}
    for name, target in root_and_containers(victim).items():
        how, negotiation = await ask(attacker, victim, target)
        outcome[name] = how
        if how == "asked":
            assert negotiation is not None
            result = await asyncio.to_thread(victim.cli, "requests", "approve",
                                             negotiation.rsplit("/", 1)[-1])
            outcome[name] += f", approved (exit {result.returncode})"
    reads = {place: await attacker.reads(victim.pod + place)
             for place in ("vrm/negotiations/", "vrm/terms/", "vrm/transactions/bolt/2026",
                           "vrm/agreements/", "vrm/grants", "notes/diary")}
    assert all(status == 403 for status in reads.values()), (
        f"the vendor reads the agent's records: {reads}; {outcome}")
    wrong = {name: how for name, how in outcome.items() if how != "refused"}
    assert not wrong, f"not refused: {json.dumps(wrong, indent=1)}"


async def test_a_resource_outside_vrm_is_still_granted_when_the_person_approves(
        victim: Victim, attacker: Attacker) -> None:
    """The control: the refusals above are about the places, not every URL target."""
    how, negotiation = await ask(attacker, victim, victim.diary)
    assert how == "asked" and negotiation is not None, how
    await asyncio.to_thread(victim.cli_ok, "requests", "approve", negotiation.rsplit("/", 1)[-1])
    assert await attacker.reads(victim.diary) == 200
    assert await attacker.reads(victim.pod + "vrm/negotiations/") == 403


async def test_a_vendor_cannot_probe_which_resources_exist(victim: Victim,
                                                           attacker: Attacker) -> None:
    """The agent looks a named resource up with the person's authority: its answer must not
    tell the vendor whether a private resource exists (its name may say more than its body)."""
    answers = {}
    for name, target in {"exists": victim.diary,
                         "missing": victim.pod + "notes/hiv-test-results"}.items():
        answer = await attacker.request(victim, research(target))
        body = answer.json or {}
        answers[name] = (answer.status, body.get("state"), body.get("event"))
    assert answers["exists"] == answers["missing"], answers


async def test_purchases_are_shared_per_vendor_only(victim: Victim, bolt: Attacker) -> None:
    """pd:Purchase for bolt is bolt's purchases, never another vendor's."""
    view = await bolt.vendor.request(victim.info, research("pd:Purchase"))
    if view.awaiting_person:
        await asyncio.to_thread(victim.cli_ok, "requests", "approve",
                                view.url.rsplit("/", 1)[-1])
    assert await bolt.reads(victim.purchases("bolt") + "2026") == 200
    assert await bolt.reads(victim.purchases("acme") + "2026") == 403
    assert await bolt.reads(victim.purchases("acme")) == 403
    assert await bolt.reads(victim.pod + "vrm/transactions/") == 403
