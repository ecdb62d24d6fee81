"""The conformance kit: its pure parts (expectations, JUnit XML, reading answers), the vendor
checks against this project's vendor inbox and against an inbox that takes everything, and the
agent checks against a real `vrm-agent run` on a real pod server (WAC and ACP) with real vendor
accounts, and against an agent that answers 200 to everything."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from tests.conftest import PodEnv, RunningAgent, new_account, run_cli, start_agent, stop_agent
from vrm_agent.conformance.agent import BAD_REQUESTS, bad_request_body, classify, request_message
from vrm_agent.conformance.agent import CHECKS as AGENT_CHECKS
from vrm_agent.conformance.expectations import DEFAULTS, load_expectations, parse_expectations
from vrm_agent.conformance.http import Answer
from vrm_agent.conformance.results import Failed, Outcome, Result, junit_xml, plain_table
from vrm_agent.conformance.vendor import CHECKS as VENDOR_CHECKS
from vrm_agent.errors import ConfigError
from vrm_agent.ledger.records import ContactUnit
from vrm_agent.ledger.store import Ledger
from vrm_agent.pod.client import PodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.podserver.process import free_port
from vrm_agent.vendor import AgentInfo, Inbox

# -- pure parts ---------------------------------------------------------------------------------


def test_check_ids_are_unique_and_name_a_section() -> None:
    for checks in (AGENT_CHECKS, VENDOR_CHECKS):
        ids = [c.id for c in checks]
        assert len(ids) == len(set(ids))
        assert all(c.section and c.description for c in checks)


def test_every_error_of_section_11_has_a_check() -> None:
    slugs = {b.slug for b in BAD_REQUESTS}
    described = " ".join(c.description for c in AGENT_CHECKS)
    for slug in ("malformed-message", "wrong-message-type", "unknown-event",
                 "wrong-negotiation", "agreement-mismatch", "bad-callback", "unauthenticated",
                 "unknown-negotiation", "no-such-endpoint", "not-allowed-in-state",
                 "too-large"):
        assert slug in slugs or slug in described, slug


def test_each_bad_request_differs_from_the_good_one() -> None:
    good = request_message(("pd:EmailAddress",), "dpv:DirectMarketing", "P7D",
                           uid="urn:uuid:00000000-0000-4000-a000-000000000000")
    encoded = json.dumps(good).encode()
    for bad in BAD_REQUESTS:
        body = bad_request_body(bad, good)
        assert body != encoded, bad.id
    assert good["policy"]["uid"].startswith("urn:uuid:")  # the base is never changed
    assert len(bad_request_body(next(b for b in BAD_REQUESTS if b.id == "err-too-large"),
                                good)) > 65_536


def test_expectations_default_to_the_starter_terms_and_overlay_a_file(tmp_path: Path) -> None:
    assert load_expectations(None) == DEFAULTS
    path = tmp_path / "terms.toml"
    path.write_text('[agree]\nask = ["pd:TelephoneNumber"]\n\n[person]\nskip = true\n')
    found = load_expectations(path)
    assert found["agree"].ask == ("pd:TelephoneNumber",)
    assert found["agree"].purpose == DEFAULTS["agree"].purpose
    assert found["person"].skip and not found["refuse"].skip
    as_json = tmp_path / "terms.json"
    as_json.write_text(json.dumps({"expiry": {"duration": "PT5S"}}))
    assert load_expectations(as_json)["expiry"].duration == "PT5S"


@pytest.mark.parametrize(("data", "words"), [
    ({"agreee": {}}, "unknown section [agreee]"),
    ({"agree": {"asks": []}}, "unknown key 'asks'"),
    ({"agree": {"ask": []}}, "ask must list"),
    ({"agree": {"ask": ["email home"]}}, "ask must list"),
    ({"agree": {"purpose": 7}}, "purpose must be"),
    ({"expiry": {"duration": "P1M"}}, "duration must be"),
    ({"expiry": {"duration": "PT0.5S"}}, "duration must be"),
    ({"refuse": {"skip": "yes"}}, "skip must be true or false"),
    (["agree"], "expected a table"),
])
def test_bad_expectations_are_refused_in_one_line(data: object, words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_expectations(data)
    assert words in str(refused.value) and "\n" not in str(refused.value)


def test_an_unreadable_expectations_file_says_so(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[agree\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_expectations(broken)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_expectations(tmp_path / "missing.toml")


def _answer(status: int, doc: dict[str, object], location: str | None = None) -> Answer:
    headers = {"content-type": "application/ld+json"}
    if location:
        headers["location"] = location
    return Answer(status, headers, json.dumps(doc).encode())


def test_answers_to_a_new_request_are_read_by_the_protocol() -> None:
    endpoint = "http://agent.test/negotiations"
    url = endpoint + "/0123456789abcdef"
    agreed = {"id": url, "state": "AGREED", "agreement": {"uid": "urn:x"},
              "grant": [{"resource": ["http://pod.test/a"], "until": "2030-01-01T00:00:00Z"}]}
    assert classify(_answer(201, agreed, url), endpoint) == "agree"
    assert classify(_answer(201, {"id": url, "state": "OFFERED",
                                  "policy": {"type": "Offer"}}, url), endpoint) == "counter"
    assert classify(_answer(201, {"id": url, "state": "TERMINATED", "event": "refused"}, url),
                    endpoint) == "refuse"
    assert classify(_answer(202, {"id": url, "state": "REQUESTED", "status": url}, url),
                    endpoint) == "person"
    for status, doc, location in ((201, {**agreed, "grant": []}, url),  # agreed, nothing given
                                  (201, agreed, None),  # no Location
                                  (200, agreed, url),  # not 201
                                  (202, {"id": url, "state": "REQUESTED"}, url),  # no status
                                  (201, {"id": url, "state": "VERIFIED"}, url)):
        with pytest.raises(Failed):
            classify(_answer(status, doc, location), endpoint)


def test_junit_xml_has_the_shape_ci_tools_read() -> None:
    results = [Result("a", "2", "passes", Outcome.PASS, "ok", 0.1),
               Result("b", "11", "fails", Outcome.FAIL, "400, not 413 \x1b[31m", 0.2),
               Result("c", "9", "skips", Outcome.SKIP, "no person", 0.0)]
    root = ET.fromstring(junit_xml(results, suite="agent", target="http://agent.test/"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"),
            suite.get("errors")) == ("3", "1", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name", "").split(":")[0] for c in cases] == ["a", "b", "c"]
    assert all(c.get("classname", "").startswith("protocol.section-") for c in cases)
    assert float(cases[1].get("time", "x")) == pytest.approx(0.2)
    failure = cases[1].find("failure")
    assert failure is not None and "\x1b" not in (failure.get("message") or "")
    assert cases[2].find("skipped") is not None and cases[0].find("failure") is None
    assert "1 passed, 1 failed, 1 skipped" in plain_table(results)


# -- vendor checks --------------------------------------------------------------------------------


def _junit_outcomes(path: Path) -> dict[str, str]:
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    found = {}
    for case in suite.findall("testcase"):
        outcome = ("fail" if case.find("failure") is not None
                   else "skip" if case.find("skipped") is not None else "pass")
        found[case.get("name", "").split(":")[0]] = outcome
    return found


async def test_the_vendor_checks_pass_against_this_projects_inbox(tmp_path: Path) -> None:
    key_file = tmp_path / "kit-key.json"
    made = await asyncio.to_thread(run_cli, "conformance", "keygen", str(key_file))
    assert made.returncode == 0, made.stderr
    verification_method = made.stdout.strip()
    assert verification_method.startswith("did:key:z")
    assert key_file.stat().st_mode & 0o077 == 0
    agent_url = "http://localhost:1/"
    async with Inbox() as inbox:
        inbox.trust(AgentInfo(agent_url, "http://pod.test/person#me", agent_url + "negotiations",
                              verification_method))
        junit = tmp_path / "vendor.xml"
        result = await asyncio.to_thread(
            run_cli, "conformance", "vendor", inbox.url, "--key", str(key_file),
            "--agent-url", agent_url, "--junit", str(junit))
        assert result.returncode == 0, result.stdout + result.stderr
        assert len(inbox.received) == 3  # the two valid ones and the first of the replay
        assert len(inbox.refusals) == len(VENDOR_CHECKS) - 2
    assert set(_junit_outcomes(junit).values()) == {"pass"}


@pytest_asyncio.fixture(loop_scope="session")
async def yes_server() -> AsyncIterator[str]:
    """An HTTP server that answers 200 with an empty JSON object to everything: the thing under
    test in the checks that a broken implementation fails."""
    async def anything(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({})

    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "localhost", port).start()
    try:
        yield f"http://localhost:{port}/"
    finally:
        await runner.cleanup()


async def test_an_inbox_that_takes_everything_fails_the_refusal_checks(
        tmp_path: Path, yes_server: str) -> None:
    key_file = tmp_path / "kit-key.json"
    assert (await asyncio.to_thread(run_cli, "conformance", "keygen", str(key_file))
            ).returncode == 0
    junit = tmp_path / "vendor.xml"
    result = await asyncio.to_thread(
        run_cli, "conformance", "vendor", yes_server + "inbox", "--key", str(key_file),
        "--agent-url", "http://localhost:1/", "--junit", str(junit))
    assert result.returncode == 3
    outcomes = _junit_outcomes(junit)
    assert outcomes.pop("inbox-valid") == outcomes.pop("inbox-valid-expired") == "pass"
    assert set(outcomes.values()) == {"fail"}


def test_bad_arguments_are_one_line_with_what_to_do(tmp_path: Path) -> None:
    missing = run_cli("conformance", "vendor", "http://localhost:1/inbox", "--key",
                      str(tmp_path / "none.json"), "--agent-url", "http://localhost:2/")
    assert missing.returncode == 1 and "conformance keygen" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    no_vendor = run_cli("conformance", "agent", "http://localhost:1/", "--vendor-config",
                        str(tmp_path / "none.json"))
    assert no_vendor.returncode == 1 and "vrm-agent login" in no_vendor.stderr
    unknown = run_cli("conformance", "agent", "http://localhost:1/", "--vendor-config",
                      str(tmp_path / "none.json"), "--only", "no-such-check")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr


# -- agent checks against real agents -----------------------------------------------------------


def _login(account: PodAccount, config: Path) -> Path:
    result = run_cli("login", "--webid", account.webid, "--client-id", account.client_id,
                     "--client-secret", account.client_secret, "--config", str(config))
    assert result.returncode == 0, result.stderr
    return config


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def kit_vendors(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                      ) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp(f"kit-vendors-{pod_env.flavour.value}")
    vendor, other = await new_account(pod_env, "kitshop"), await new_account(pod_env, "kitother")
    return (await asyncio.to_thread(_login, vendor, folder / "vendor.json"),
            await asyncio.to_thread(_login, other, folder / "other.json"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def kit_person(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory
                     ) -> AsyncIterator[tuple[PodAccount, RunningAgent]]:
    """A person with an e-mail address and the starter terms, and their agent running."""
    person = await new_account(pod_env, "kitperson")
    async with PodClient(person.credentials) as pod:
        await Ledger(pod, person.pod).create(
            ContactUnit("email-home", "email", "kitperson@example.org"))
    folder = tmp_path_factory.mktemp(f"kit-person-{pod_env.flavour.value}")
    agent = await asyncio.to_thread(start_agent, pod_env, folder, person)
    yield person, agent
    stop_agent(agent)


@pytest.mark.pod
async def test_the_agent_checks_pass_against_this_projects_agent(
        kit_person: tuple[PodAccount, RunningAgent], kit_vendors: tuple[Path, Path],
        tmp_path: Path) -> None:
    person, _ = kit_person
    vendor, other = kit_vendors
    junit = tmp_path / "agent.xml"
    result = await asyncio.to_thread(
        run_cli, "conformance", "agent", person.webid, "--vendor-config", str(vendor),
        "--other-vendor-config", str(other), "--junit", str(junit), "--strict", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    outcomes = _junit_outcomes(junit)
    assert set(outcomes) == {c.id for c in AGENT_CHECKS}
    assert set(outcomes.values()) == {"pass"}, outcomes


@pytest.mark.pod
async def test_given_the_agents_url_the_profile_check_is_skipped_with_the_reason(
        kit_person: tuple[PodAccount, RunningAgent], kit_vendors: tuple[Path, Path]) -> None:
    _, agent = kit_person
    result = await asyncio.to_thread(
        run_cli, "conformance", "agent", agent.url, "--vendor-config", str(kit_vendors[0]),
        "--only", "discovery-profile", "--only", "discovery-document", "--only", "refuse",
        "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["discovery-profile"]["outcome"] == "skip"
    assert "not a WebID" in rows["discovery-profile"]["detail"]
    assert rows["discovery-document"]["outcome"] == rows["refuse"]["outcome"] == "pass"


@pytest.mark.pod
async def test_terms_that_answer_otherwise_skip_with_what_was_asked(
        kit_person: tuple[PodAccount, RunningAgent], kit_vendors: tuple[Path, Path],
        tmp_path: Path) -> None:
    person, _ = kit_person
    expectations = tmp_path / "terms.toml"
    # The starter terms refuse marketing: said to agree, the kit cannot judge the agree path.
    expectations.write_text('[agree]\npurpose = "dpv:DirectMarketing"\n')
    args = ("conformance", "agent", person.webid, "--vendor-config", str(kit_vendors[0]),
            "--expectations", str(expectations), "--only", "agree", "--only", "agree-read",
            "--json")
    result = await asyncio.to_thread(run_cli, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["agree"]["outcome"] == "skip"
    assert "dpv:DirectMarketing" in rows["agree"]["detail"]
    assert "'refuse'" in rows["agree"]["detail"]
    assert rows["agree-read"]["outcome"] == "skip"
    strict = await asyncio.to_thread(run_cli, *args, "--strict")
    assert strict.returncode == 3


@pytest.mark.pod
async def test_an_agent_that_answers_200_to_everything_fails_the_right_checks(
        kit_vendors: tuple[Path, Path], yes_server: str, tmp_path: Path) -> None:
    junit = tmp_path / "broken.xml"
    result = await asyncio.to_thread(
        run_cli, "conformance", "agent", yes_server, "--vendor-config", str(kit_vendors[0]),
        "--no-expiry", "--junit", str(junit), timeout=300)
    assert result.returncode == 3, result.stdout + result.stderr
    outcomes = _junit_outcomes(junit)
    for failing in ("discovery-document", "auth-missing", "auth-replay", "agree", "refuse",
                    "counter", "person", "unknown-negotiation", "wrong-method",
                    *(b.id for b in BAD_REQUESTS)):
        assert outcomes[failing] == "fail", failing
    # What builds on a path that failed is skipped, not failed again.
    for built_on in ("agree-signed", "agree-read", "countersign", "counter-accept"):
        assert outcomes[built_on] == "skip", built_on
    assert outcomes["expiry"] == "skip"
