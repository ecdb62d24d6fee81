"""Attacks on what is agreed: the countersignature that rewrites the agreement, the message
that freezes the agent while it is canonicalised, agreements that overlap, a vendor naming
another as assignee or acting on another's negotiation, and the truth the CLI tells about them.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import PodEnv
from tests.security.conftest import (
    Attacker,
    Victim,
    allowed,
    make_victim,
    raw_request,
    research,
    settle,
    snapshot,
    unexpected,
)
from vrm_agent.integrity import add_proof, verify_proofs
from vrm_agent.negotiation.protocol import State
from vrm_agent.negotiation.records import content_hash
from vrm_agent.negotiation.wire import CONTEXT_DOCUMENT, message_json
from vrm_agent.vendor import NegotiationView, request_policy

pytestmark = pytest.mark.pod
AUDIT_ONLY = ("vrm/audit/",)


def email_for_delivery() -> Any:
    return request_policy(["pd:EmailAddress"], purpose="dpv:DeliveryOfGoods",
                          duration=__import__("datetime").timedelta(days=7))


async def agreed(attacker: Attacker, victim: Victim) -> NegotiationView:
    view = await attacker.vendor.request(victim.info, email_for_delivery())
    assert view.state is State.AGREED, view.document
    return view


def remapped(agreement: dict[str, Any], victim: Victim) -> dict[str, Any]:
    """The agreement with the same RDF but other JSON: ``permission`` and ``grant`` mapped to
    nothing, what was signed moved under new keys, and a forged permission (direct marketing)
    and grant (until 2036, the phone too) where a reader of the JSON looks."""
    terms = CONTEXT_DOCUMENT["@context"]
    forged = copy.deepcopy(agreement)
    forged["@context"] = [*agreement["@context"], {
        "permission": None, "grant": None,
        "signedPermission": terms["permission"], "signedGrant": terms["grant"]}]
    forged["signedPermission"] = agreement["permission"]
    forged["signedGrant"] = agreement["grant"]
    forged["permission"] = [{"action": "use", "target": ["pd:EmailAddress"], "constraint": [
        {"leftOperand": "purpose", "operator": "eq",
         "rightOperand": {"id": "dpv:DirectMarketing"}}]}]
    forged["grant"] = [{"resource": [victim.email, victim.phone],
                        "until": "2036-12-31T23:59:59Z"}]
    return forged


async def test_countersignature_remapping_the_context_is_refused(victim: Victim,
                                                                 attacker: Attacker) -> None:
    view = await agreed(attacker, victim)
    ours = dict(view.agreement or {})
    countersigned = add_proof(remapped(ours, victim), attacker.vendor.key)
    # The attack is well formed: the same RDF, so every proof verifies.
    assert content_hash(countersigned) == content_hash(ours)
    assert len(verify_proofs(countersigned)) == 2
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    answer = await attacker.send("POST", view.url + "/agreement/verification", message_json(
        "ContractAgreementVerificationMessage", negotiation=view.url, agreement=countersigned))
    await settle()
    after = await snapshot(owner, victim.pod)
    await owner.close()
    served = (await attacker.send("GET", view.url)).json
    assert answer.status >= 400 and answer.is_problem(), f"the remapped agreement: {answer}"
    assert served["state"] == "AGREED", served["state"]
    assert served["agreement"] == ours, "the agent serves the vendor's JSON as the agreement"
    assert "DirectMarketing" not in json.dumps(served)
    assert not unexpected(before, after, allowed(victim, *AUDIT_ONLY))
    # The honest countersignature still goes through afterwards.
    final = await attacker.vendor.verify(view)
    assert final.state is State.FINALIZED


# -- a message that takes long to canonicalise ----------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def frozen(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Victim]:
    """A person of their own: where this attack succeeds, the agent is busy for minutes."""
    folder: Path = tmp_path_factory.mktemp(f"frozen-{pod_env.flavour.value}")
    target = await make_victim(pod_env, "frozen", folder)
    yield target
    target.agent.process.kill()  # it may still be canonicalising; nothing is lost in the pod
    target.agent.process.wait()


def blank_node_bomb(agreement: dict[str, Any]) -> dict[str, Any]:
    """Seven blank nodes each linked to all the others, inside the agreement: canonicalisation
    must try every order of them (about 2.7 KB)."""
    bomb = copy.deepcopy(agreement)
    link = "https://example.org/knows"
    bomb["https://example.org/related"] = [
        {"@id": f"_:b{i}", link: [{"@id": f"_:b{j}"} for j in range(7) if j != i]}
        for i in range(7)]
    return bomb


async def test_blank_node_bomb_in_the_countersignature_does_not_freeze_the_agent(
        frozen: Victim, attacker: Attacker) -> None:
    view = await agreed(attacker, frozen)
    bomb = blank_node_bomb(dict(view.agreement or {}))  # the agent's proof only: no need to sign
    body = json.dumps(message_json("ContractAgreementVerificationMessage", negotiation=view.url,
                                   agreement=bomb)).encode()
    started = time.monotonic()
    sent = asyncio.create_task(attacker.send("POST", view.url + "/agreement/verification", body,
                                             timeout=300))
    polls: list[tuple[float, float | None]] = []  # (asked, answered), seconds from the start

    async def poll_health() -> None:
        while not sent.done():
            asked = time.monotonic() - started
            index = len(polls)
            polls.append((asked, None))
            try:
                await raw_request("GET", frozen.agent.url + "health", None, {}, timeout=300)
                polls[index] = (asked, time.monotonic() - started)
            except (TimeoutError, OSError):
                return
            await asyncio.sleep(0.2)

    poller = asyncio.create_task(poll_health())
    answer = await sent
    done = time.monotonic() - started
    await poller
    # /health answers while the bomb is processed: no /health request waits for most of the
    # bomb's processing (one that does waited for the event loop the bomb held).
    stalled = [(asked, answered) for asked, answered in polls
               if (answered is None and asked < done - 1.0)
               or (answered is not None and answered - asked > max(1.0, 0.5 * done))]
    print(f"\nblank-node bomb ({len(body)} bytes): answered {answer.status} after {done:.1f} s; "
          f"/health polls (asked, answered): "
          f"{[(round(a, 2), round(b, 2) if b else None) for a, b in polls][:12]}")
    assert not stalled, (
        f"/health asked at {stalled[0][0]:.1f} s waited until {stalled[0][1]} s while the bomb "
        f"was processed (the bomb's answer came at {done:.1f} s)")
    assert answer.status in (400, 413, 422) and answer.is_problem(), answer
    served = (await attacker.send("GET", view.url)).json
    assert served["state"] == "AGREED"


# -- overlapping agreements, and the truth about access -------------------------------------------


async def test_two_overlapping_agreements_are_not_both_made_silently(
        victim: Victim, attacker: Attacker) -> None:
    first = await attacker.vendor.request(victim.info, email_for_delivery())
    second_answer = await attacker.request(victim, email_for_delivery())
    if second_answer.status >= 400:
        assert second_answer.is_problem(), second_answer
        return  # refused outright: one agreement
    states = {}
    for url in {first.url, second_answer.json["id"]}:
        states[url] = (await attacker.send("GET", url)).json["state"]
    in_force = [url for url, state in states.items()
                if state in ("AGREED", "VERIFIED", "FINALIZED")]
    assert len(in_force) <= 1, f"two agreements in force for one vendor, resource and " \
                               f"purpose: {states}"


async def test_revoking_one_grant_tells_the_truth_about_access_that_remains(
        victim: Victim, attacker: Attacker) -> None:
    view = await agreed(attacker, victim)
    # The person also shares one of the addresses with the vendor by hand.
    await asyncio.to_thread(victim.cli_ok, "share", victim.email, "--with", attacker.webid,
                            "--for", "1d")
    grants = json.loads(await asyncio.to_thread(
        victim.cli_ok, "grants", "--json", "--agent", attacker.webid))
    agreement_grants = [g for g in grants if g.get("agreement") == view.url]
    assert agreement_grants, grants
    said = await asyncio.to_thread(victim.cli_ok, "grants", "revoke", agreement_grants[0]["id"])
    still = [url for url in (victim.email, victim.email_work)
             if await attacker.reads(url) == 200]
    assert still == [victim.email], still  # the shared address, through the other grant
    claims_lost = "no longer has access" in said and not any(
        word in said for word in ("still", "remain"))
    assert not claims_lost, f"the CLI said {said.strip()!r} while the vendor still reads {still}"


async def test_requests_approve_grants_only_what_the_person_was_shown(
        victim: Victim, attacker: Attacker) -> None:
    asked = await attacker.request(victim, request_policy(
        ["pd:EmailAddress"], purpose="dpv:ResearchAndDevelopment"))
    assert asked.status == 202, asked
    # Polled while the person decides: 200 with the document, whose status says it waits.
    polled = await attacker.send("GET", asked.json["id"])
    assert polled.status == 200 and polled.json["state"] == "REQUESTED", polled
    assert "status" in polled.json
    negotiation_id = asked.json["id"].rsplit("/", 1)[-1]
    shown = await asyncio.to_thread(victim.cli_ok, "requests", "--json")
    await asyncio.to_thread(victim.cli_ok, "requests", "approve", negotiation_id)
    readable = [url for url in (victim.email, victim.email_work)
                if await attacker.reads(url) == 200]
    # Shown as a URL, or by its place in the pod (vrm/contact/email-home).
    not_shown = [url for url in readable
                 if url not in shown and url.removeprefix(victim.pod) not in shown]
    assert not not_shown, f"the person was shown {shown.strip()}; the vendor now reads {readable}"


async def test_a_vendor_cannot_name_another_as_the_assignee(
        victim: Victim, attacker: Attacker, bolt: Attacker) -> None:
    policy = replace(email_for_delivery(), assignee=bolt.webid, assigner=bolt.webid)
    answer = await attacker.request(victim, policy)
    assert answer.status in (201, 400), answer
    assert await bolt.reads(victim.email_work) == 403
    assert await bolt.reads(victim.email) == 403
    if answer.status == 201:
        agreement = answer.json.get("agreement") or {}
        assert agreement.get("assignee") == attacker.webid, agreement.get("assignee")


async def test_a_vendor_cannot_act_on_another_vendors_negotiation(
        victim: Victim, attacker: Attacker, bolt: Attacker) -> None:
    view = await agreed(attacker, victim)
    owner = await victim.owner()
    before = await snapshot(owner, victim.pod)
    answers = {
        "status": await bolt.send("GET", view.url),
        "termination": await bolt.send("POST", view.url + "/termination", message_json(
            "ContractNegotiationTerminationMessage", negotiation=view.url, reason=["mine now"])),
        "verification": await bolt.send("POST", view.url + "/agreement/verification",
                                        message_json("ContractAgreementVerificationMessage",
                                                     negotiation=view.url,
                                                     agreement=add_proof(view.agreement or {},
                                                                         bolt.vendor.key))),
        "events": await bolt.send("POST", view.url + "/events", message_json(
            "ContractNegotiationEventMessage", negotiation=view.url, event="ACCEPTED")),
        "request": await bolt.send("POST", view.url + "/request", message_json(
            "ContractRequestMessage", negotiation=view.url, policy=research("pd:TelephoneNumber"))),
    }
    await settle()
    after = await snapshot(owner, victim.pod)
    await owner.close()
    for name, answer in answers.items():
        assert answer.status == 404 and answer.is_problem(404), f"{name}: {answer}"
    assert (await attacker.send("GET", view.url)).json["state"] == "AGREED"
    assert await bolt.reads(victim.email) == 403
    assert not unexpected(before, after, allowed(victim, *AUDIT_ONLY))


async def test_vendor_text_cannot_drive_the_persons_terminal(victim: Victim,
                                                            attacker: Attacker) -> None:
    """What a vendor writes (its consideration) reaches the person's terminal through
    ``requests``: control characters there could hide or fake what the person approves."""
    hostile = "free\x1b[2K\r\x1b[32mAPPROVED by your terms\x1b[0m\x07\x1b]0;title\x07"
    asked = await attacker.request(victim, request_policy(
        ["pd:TelephoneNumber"], purpose="dpv:ResearchAndDevelopment", consideration=hostile))
    assert asked.status == 202, asked
    listed = await asyncio.to_thread(victim.cli_ok, "requests")
    shown = await asyncio.to_thread(victim.cli_ok, "negotiations", "show",
                                    asked.json["id"].rsplit("/", 1)[-1])
    for output in (listed, shown):
        assert not any(ch in output for ch in "\x1b\x07\r"), repr(output[-300:])
