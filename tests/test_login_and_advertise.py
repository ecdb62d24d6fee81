"""`login` takes only the WebID's own credentials, and only one agent advertises itself in the
person's profile at a time (real CSS, real `vrm-agent` processes)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from rdflib import Graph, URIRef

from tests.conftest import PodEnv, new_account, run_cli, start_agent, stop_agent
from vrm_agent.cli.pod_commands import token_webid
from vrm_agent.pod import SyncPodClient
from vrm_agent.podserver import PodAccount
from vrm_agent.podserver.process import free_port

pytestmark = pytest.mark.pod
VRM_AGENT = URIRef("https://w3id.org/vrm-agent/ns#agent")


def test_login_refuses_another_accounts_credentials(pod_env: PodEnv, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    refused = run_cli("login", "--webid", pod_env.alice.webid,
                      "--client-id", pod_env.acme.client_id,
                      "--client-secret", pod_env.acme.client_secret, "--config", str(config))
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert pod_env.acme.webid in lines[0] and pod_env.alice.webid in lines[0]
    assert "nothing was stored" in lines[0]
    assert not config.exists()


def test_a_failed_login_leaves_the_stored_credentials_alone(pod_env: PodEnv,
                                                           tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    ok = run_cli("login", "--webid", pod_env.alice.webid, "--client-id", pod_env.alice.client_id,
                 "--client-secret", pod_env.alice.client_secret, "--config", str(config))
    assert ok.returncode == 0, ok.stderr
    before = config.read_text(), (tmp_path / "config.secrets.json").read_text()
    refused = run_cli("login", "--webid", pod_env.alice.webid,
                      "--client-id", pod_env.acme.client_id,
                      "--client-secret", pod_env.acme.client_secret, "--config", str(config))
    assert refused.returncode != 0
    assert (config.read_text(), (tmp_path / "config.secrets.json").read_text()) == before


def test_the_token_webid_is_read_from_the_claims() -> None:
    assert token_webid("x.eyJ3ZWJpZCI6Imh0dHA6Ly9hL2IjbWUifQ.y") == "http://a/b#me"
    for junk in ("", "nodots", "a.!!!.b", "a.bnVsbA.b", "a.eyJ3ZWJpZCI6IDF9.b"):
        assert token_webid(junk) is None


def advertised(person: PodAccount) -> set[str]:
    with SyncPodClient() as anyone:
        profile = anyone.get_graph(person.webid, authenticated=False).graph
    return {str(o) for o in profile.objects(URIRef(person.webid), VRM_AGENT)}


def wait_until(check: object, within: float = 30.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.3)
    return False


def prepared(folder: Path, every: float = 1.0) -> Path:
    """A config folder whose agent checks its advertisement every ``every`` seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"daemon": {"advertise_every": every}}))
    return folder


def test_only_one_agent_advertises_itself(pod_env: PodEnv, tmp_path: Path) -> None:
    person = asyncio.run(new_account(pod_env, "gina"))
    first = start_agent(pod_env, prepared(tmp_path / "first"), account=person)
    second_config = prepared(tmp_path / "second") / "config.json"
    try:
        assert advertised(person) == {first.url}
        # A second agent for the same person, on another port: refused, with one clear line.
        login = run_cli("login", "--webid", person.webid, "--client-id", person.client_id,
                        "--client-secret", person.client_secret, "--config", str(second_config))
        assert login.returncode == 0, login.stderr
        second = run_cli("run", "--port", str(free_port()), "--config", str(second_config))
        assert second.returncode != 0
        errors = [line for line in second.stderr.splitlines() if line.startswith("vrm-agent:")]
        assert len(errors) == 1 and first.url in errors[0] and "another agent" in errors[0]
        assert advertised(person) == {first.url}
        # Someone changes the advertisement while the first agent runs: it puts it back.
        with SyncPodClient(person.credentials) as pod:
            profile = person.webid.split("#", 1)[0]
            wrong, old = Graph(), Graph()
            wrong.add((URIRef(person.webid), VRM_AGENT, URIRef("http://localhost:9/")))
            old.add((URIRef(person.webid), VRM_AGENT, URIRef(first.url)))
            pod.patch(profile, inserts=wrong, deletes=old)
        assert advertised(person) == {"http://localhost:9/"}
        assert wait_until(lambda: advertised(person) == {first.url})
        assert "advertisement repaired" in first.log.read_text()
    finally:
        assert stop_agent(first) == 0
    # The advertised agent no longer answers: a new one takes over.
    taking_over = start_agent(pod_env, second_config.parent, account=person)
    try:
        assert advertised(person) == {taking_over.url}
    finally:
        stop_agent(taking_over)
