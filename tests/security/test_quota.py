"""A vendor cannot fill the person's pod with negotiations: every new one is a record (a refused
one too), so past its quota a vendor is answered 429 with Retry-After and nothing is written,
while other vendors, and the negotiations it has open, go on. Real daemon, real CSS (WAC and
ACP), real vendor accounts."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import PodEnv, run_cli, stop_agent
from tests.security.conftest import Answer, Attacker, Victim, make_victim, marketing
from vrm_agent.podserver.process import free_port
from vrm_agent.vendor.client import AgentRefused

pytestmark = pytest.mark.pod

BURST = 3
HOUR = 3600


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def limited(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Victim]:
    """A person whose agent takes three new negotiations from a vendor, then one an hour."""
    folder = tmp_path_factory.mktemp(f"quota-{pod_env.flavour.value}")
    target = await make_victim(pod_env, "quota", folder, settings={
        "daemon": {"new_negotiations": {"burst": BURST, "refill_seconds": HOUR}}})
    yield target
    stop_agent(target.agent)


async def access_request(vendor: Attacker, victim: Victim) -> Answer:
    """A W3C LWS access request for the person's e-mail address (docs/lws-access-requests.md)."""
    return await vendor.send("POST", victim.agent.url + "lws/requests/", {
        "@context": ["https://www.w3.org/ns/lws/v1"], "type": ["AccessRequest"],
        "storage": victim.pod,
        "access": [{"type": ["AccessPolicy"], "action": ["read"], "assignee": vendor.webid,
                    "target": {"type": "DataResource", "value": [victim.email]},
                    "constraint": [{"leftOperand": "purpose", "operator": "eq",
                                    "rightOperand": "https://w3id.org/dpv#ServiceProvision"}]}]},
        headers={"Content-Type": "application/lws+json"})


async def records(victim: Victim) -> set[str]:
    owner = await victim.owner()
    try:
        return set(await owner.list_container(f"{victim.pod}vrm/negotiations/"))
    finally:
        await owner.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_past_its_quota_a_vendor_is_told_when_to_come_back_and_nothing_is_written(
        limited: Victim, attacker: Attacker, bolt: Attacker) -> None:
    opened = [await attacker.request(limited, marketing("pd:EmailAddress"))
              for _ in range(BURST)]
    assert [a.status for a in opened] == [201] * BURST, [str(a) for a in opened]
    before = await records(limited)
    over = await attacker.request(limited, marketing("pd:EmailAddress"))
    assert over.is_problem(429), str(over)
    assert "try again in" in over.json["detail"]
    assert over.retry_after is not None and 1 <= int(over.retry_after) <= HOUR
    # The vendor side of the package says so in a typed error.
    with pytest.raises(AgentRefused) as refused:
        await attacker.vendor.request(limited.info, marketing("pd:EmailAddress"))
    assert refused.value.status == 429 and refused.value.retry_after is not None
    # The LWS door to the same records shares the quota.
    lws = await access_request(attacker, limited)
    assert lws.status == 429 and lws.retry_after is not None, str(lws)
    # A malformed message is still answered as one (it would write nothing anyway).
    assert (await attacker.send("POST", limited.negotiations, b"{}")).is_problem(400)
    assert await records(limited) == before
    # Another vendor is not held back by this one; this one's open negotiation still answers.
    assert (await bolt.request(limited, marketing("pd:EmailAddress"))).status == 201
    assert (await access_request(bolt, limited)).status == 201
    assert (await attacker.send("GET", opened[0].json["id"])).status == 200


def test_a_quota_setting_that_is_no_number_stops_the_start(limited: Victim,
                                                           tmp_path: Path) -> None:
    """Never taken as no limit: the agent does not start, and says what to fix."""
    config = limited.agent.config
    for name in (config.name, config.stem + ".secrets.json"):
        shutil.copy(config.parent / name, tmp_path / name)
    copied = tmp_path / config.name
    for bad in ({"burst": 0}, {"burst": "lots"}, {"refill_seconds": "NaN"}, "ten"):
        settings = json.loads(copied.read_text())
        settings["daemon"] = {"new_negotiations": bad}
        copied.write_text(json.dumps(settings))
        result = run_cli("run", "--port", str(free_port()), "--config", str(copied),
                         timeout=60)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert any("daemon.new_negotiations" in line for line in lines), result.stderr
