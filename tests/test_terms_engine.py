"""The terms engine through the real CLI and a real daemon on a real pod, with two real vendor
accounts: terms that could mislead are refused before anything is written; a permission for one
vendor is agreed to that vendor only (the other's own read stays 403); terms that no longer
validate are reported by `vrm-agent terms` and send requests to the person; each decision keeps
its FORCE compliance report with the negotiation record.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from rdflib import Graph, URIRef

from tests.conftest import PodEnv, RunningAgent, new_accounts, run_cli, start_agent, stop_agent
from vrm_agent.ledger.records import ContactUnit, Vendor
from vrm_agent.ledger.store import Ledger
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.protocol import State
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import Flavour, PodAccount
from vrm_agent.vendor import Inbox, VendorAgent, request_policy

pytestmark = pytest.mark.pod
DATA = Path(__file__).parent / "data" / "terms"


@dataclass
class Person:
    account: PodAccount
    agent: RunningAgent
    vendors: dict[str, PodAccount]
    email: str
    folder: Path

    def restart(self, pod_env: PodEnv) -> None:
        """A running daemon rereads the terms every 10 s; a restart reads them at once."""
        stop_agent(self.agent)
        self.agent = start_agent(pod_env, self.folder, account=self.account)

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = run_cli(*args, "--config", str(self.agent.config))
        return result.returncode, result.stdout, result.stderr


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def person(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                 ) -> AsyncIterator[Person]:
    vendors = await new_accounts(pod_env.server, "gwen", "terms-lab-a", "terms-lab-b")
    account = vendors.pop("gwen")
    async with PodClient(account.credentials) as pod:
        ledger = Ledger(pod, account.pod)
        email = await ledger.create(ContactUnit("email-home", "email", "gwen@example.org"))
        for name, vendor in vendors.items():
            await ledger.create(Vendor(name, name.title(), webid=vendor.webid))
    folder = tmp_path_factory.mktemp(f"gwen-{pod_env.flavour.value}")
    found = Person(account, start_agent(pod_env, folder, account=account), vendors, email,
                   folder)
    yield found
    stop_agent(found.agent)


@pytest_asyncio.fixture(loop_scope="session")
async def inbox() -> AsyncIterator[Inbox]:
    async with Inbox() as box:
        yield box


def research(duration: timedelta = timedelta(days=7)) -> Policy:
    return request_policy(["pd:EmailAddress"], purpose="dpv:ResearchAndDevelopment",
                          duration=duration)


def stored_terms(person: Person) -> list[str]:
    code, out, err = person.cli("terms", "--json")
    assert code == 0, err
    return [row["name"] for row in json.loads(out)]


MISLEADING = {
    "moon-phase.jsonld": "unknown left operand 'moonPhase'",
    "bad-duration.jsonld": "'P90X' is not an xsd:duration",
    "relative.jsonld": "target 'full' is a relative IRI",
    "no-time-zone.ttl": "has no time zone",
    "unknown-action.ttl": "unknown action 'teleport'",
    "unknown-purpose.ttl": "dpv:Moonlighting is not a term of the pinned DPV",
    "no-rules.ttl": "states no permission, prohibition or obligation",
}


@pytest.mark.asyncio(loop_scope="session")
async def test_terms_that_could_mislead_are_refused_before_anything_is_written(
        person: Person, pod_env: PodEnv) -> None:
    if pod_env.flavour is Flavour.ACP:
        pytest.skip("refused before the pod is touched: the same on either flavour")
    before = stored_terms(person)
    for file, problem in MISLEADING.items():
        code, out, err = person.cli("terms", "add", str(DATA / file), "--name", "tried")
        assert code != 0, file
        assert problem in err, err
        assert "Traceback" not in err + out
        assert f"{file}: " in err  # one line per problem, naming the file and the rule
    assert stored_terms(person) == before


@pytest.mark.asyncio(loop_scope="session")
async def test_a_permission_for_one_vendor_is_agreed_to_that_vendor_only(
        person: Person, inbox: Inbox, tmp_path: Path, pod_env: PodEnv) -> None:
    lab_a = person.vendors["terms-lab-a"].webid
    terms = tmp_path / "lab-a-research.ttl"
    terms.write_text(f"""
        @prefix odrl: <http://www.w3.org/ns/odrl/2/> .
        @prefix dpv: <https://w3id.org/dpv#> .
        @prefix pd: <https://w3id.org/dpv/pd#> .
        <urn:uuid:5e0c2d7e-1f0b-4cfa-9a53-4f3e8c8d2b11> a odrl:Set ;
            odrl:permission [ odrl:assignee <{lab_a}> ; odrl:action odrl:use ;
                odrl:target pd:EmailAddress ;
                odrl:constraint [ odrl:leftOperand odrl:purpose ; odrl:operator odrl:isA ;
                                  odrl:rightOperand dpv:ResearchAndDevelopment ] ] .
        """, encoding="utf-8")
    code, out, err = person.cli("terms", "add", str(terms))
    assert code == 0, err
    assert "for " + lab_a in out
    code, out, err = person.cli("terms", "show", "lab-a-research")
    assert code == 0, err
    assert out.startswith("# ") and "permission to use on pd:EmailAddress for " + lab_a in out
    stored = Graph().parse(data="\n".join(line for line in out.splitlines()
                                          if not line.startswith("# ")), format="turtle")
    assert (None, URIRef("http://www.w3.org/ns/odrl/2/assigner"),
            URIRef(person.account.webid)) in stored
    person.restart(pod_env)

    async with PodClient(person.vendors["terms-lab-a"].credentials) as pod_a, \
            PodClient(person.vendors["terms-lab-b"].credentials) as pod_b:
        vendor_a, vendor_b = VendorAgent(pod_a, inbox=inbox), VendorAgent(pod_b, inbox=inbox)
        agent_a = await vendor_a.discover(person.account.webid)
        agent_b = await vendor_b.discover(person.account.webid)
        view_a = await vendor_a.request(agent_a, research())
        view_b = await vendor_b.request(agent_b, research())
        assert view_a.state is State.AGREED, view_a
        assert view_b.state is not State.AGREED and view_b.awaiting_person, view_b
        assert (await vendor_a.read(person.email)).status == 200
        assert (await vendor_b.read(person.email)).status in (401, 403)

    negotiation_id = view_a.url.rsplit("/", 1)[-1]
    code, out, err = person.cli("negotiations", "show", negotiation_id)
    assert code == 0, err
    compliance = json.loads(out)["compliance"]
    active = [r for report in compliance for r in report["rules"] if r["active"]]
    assert any(r["kind"] == "permission" for r in active)
    code, out, err = person.cli("negotiations", "show", negotiation_id, "--report")
    assert code == 0, err
    report = Graph().parse(data=out, format="turtle")
    force = "https://w3id.org/force/compliance-report#"
    assert len(list(report.subjects(predicate=None, object=None))) > 0
    query = f"""ASK {{ ?r a <{force}PolicyReport> ; <{force}ruleReport> ?p .
                      ?p a <{force}PermissionReport> ;
                         <{force}activationState> <{force}Active> . }}"""
    assert report.query(query).askAnswer

    code, out, err = person.cli("terms", "remove", "lab-a-research")
    assert code == 0, err


@pytest.mark.asyncio(loop_scope="session")
async def test_terms_that_no_longer_validate_are_reported_and_send_requests_to_the_person(
        person: Person, inbox: Inbox, pod_env: PodEnv) -> None:
    # Written straight into the pod, as a hand edit or an older version might have left it.
    broken = f"{person.account.pod}vrm/terms/broken"
    document = Graph().parse(format="turtle", data=f"""
        @prefix odrl: <http://www.w3.org/ns/odrl/2/> .
        @prefix vrm: <https://w3id.org/vrm-agent/ns#> .
        <{broken}#it> a odrl:Offer, vrm:PersonalTerms ; odrl:uid <{broken}#it> ;
            odrl:assigner <{person.account.webid}> ;
            odrl:prohibition [ odrl:action odrl:use ;
                odrl:constraint [ odrl:leftOperand <https://example.org/moonPhase> ;
                                  odrl:operator odrl:eq ; odrl:rightOperand "full" ] ] .
        """)
    async with PodClient(person.account.credentials) as pod:
        await pod.put_graph(broken, document)
    try:
        code, out, err = person.cli("terms")
        assert code == 0, err
        assert "Terms 'broken' do not validate" in out and "moonPhase" in out
        assert "Traceback" not in out + err
        code, out, err = person.cli("terms", "--json")
        rows = {row["name"]: row for row in json.loads(out)}
        assert rows["broken"]["valid"] is False and rows["broken"]["problems"]
        person.restart(pod_env)

        # Service delivery is agreed by the starter terms, but not while some terms cannot
        # be read: the person decides.
        async with PodClient(person.vendors["terms-lab-b"].credentials) as pod_b:
            vendor = VendorAgent(pod_b, inbox=inbox)
            agent = await vendor.discover(person.account.webid)
            view = await vendor.request(agent, request_policy(
                ["pd:EmailAddress"], purpose="dpv:ServiceProvision",
                duration=timedelta(days=7)))
            assert view.state is not State.AGREED and view.awaiting_person, view
        log = person.agent.log.read_text()
        assert "Traceback" not in log
    finally:
        code, out, err = person.cli("terms", "remove", "broken")
        assert code == 0, err
