"""The daemon as a real process: health, discovery, advertising in the WebID, clean shutdown."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import pytest
from rdflib import URIRef

from tests.conftest import PodEnv, RunningAgent, start_agent, stop_agent
from vrm_agent.linkeddata.contexts import DATA_INTEGRITY_SHA256
from vrm_agent.pod import SyncPodClient

pytestmark = pytest.mark.pod
VRM_AGENT = URIRef("https://w3id.org/vrm-agent/ns#agent")


def get_json(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_health_and_discovery(agent: RunningAgent, pod_env: PodEnv) -> None:
    status, body = get_json(agent.url + "health")
    assert status == 200 and body["status"] == "ok" and body["pod"] == "reachable"
    status, document = get_json(agent.url + ".well-known/vrm-agent")
    assert document["vrm:actsFor"]["@id"] == pod_env.alice.webid
    assert document["vrm:negotiationEndpoint"]["@id"] == agent.url + "negotiations"
    assert document["vrm:signingKey"]["@id"].startswith("did:key:z6Mk")
    contexts = [c["@id"] for c in document["vrm:protocolContext"]]
    assert contexts == [agent.url + "protocol/v1", agent.url + "protocol/data-integrity/v2"]
    for url, term in zip(contexts, ("ContractRequestMessage", "DataIntegrityProof"), strict=True):
        assert term in get_json(url)[1]["@context"]
    # The W3C Data Integrity context is served byte for byte as W3C publishes it.
    with urllib.request.urlopen(contexts[1], timeout=5) as response:
        served = response.read()
    assert hashlib.sha256(served).hexdigest() == DATA_INTEGRITY_SHA256


def test_the_webid_profile_points_to_the_agent(agent: RunningAgent, pod_env: PodEnv) -> None:
    with SyncPodClient() as anyone:  # the profile is public: vendors find the agent from it
        profile = anyone.get_graph(pod_env.alice.webid, authenticated=False).graph
    assert (URIRef(pod_env.alice.webid), VRM_AGENT, URIRef(agent.url)) in profile


def test_logs_are_json_lines_and_shutdown_is_clean(pod_env: PodEnv, tmp_path: Path) -> None:
    # bolt's own agent, so alice's advertised agent (the session one) stays as it is.
    running = start_agent(pod_env, tmp_path, account=pod_env.bolt)
    assert stop_agent(running) == 0
    lines = [json.loads(line) for line in running.log.read_text().splitlines()
             if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert "agent listening" in messages and messages[-1] == "agent stopped"
    assert all({"time", "level", "logger"} <= set(line) for line in lines)
