"""The test harness: real Community Solid Servers (WAC and ACP), started once per session on free
ports, with real accounts made through the CSS v7 account API: the owner ``alice`` and the vendors
``acme`` and ``bolt``, each with its own client credentials. Servers are stopped by their PIDs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from vrm_agent.pod.client import PodClient, PodResponse
from vrm_agent.podserver import AccountApi, CssServer, Flavour, PodAccount, start_server, stop_pid
from vrm_agent.podserver.process import free_port

FLAVOURS = [Flavour.WAC, Flavour.ACP]


@dataclass(frozen=True)
class PodEnv:
    """One running pod server and its accounts."""

    server: CssServer
    alice: PodAccount
    acme: PodAccount
    bolt: PodAccount

    @property
    def flavour(self) -> Flavour:
        return self.server.flavour


@pytest.fixture(scope="session", params=FLAVOURS, ids=lambda f: f.value)
def css_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CssServer]:
    flavour: Flavour = request.param
    folder = tmp_path_factory.mktemp(f"css-{flavour.value}")
    server = start_server(port=free_port(), flavour=flavour, data_dir=folder / "data",
                          log_path=folder / "server.log")
    try:
        yield server
    finally:
        stop_pid(server.pid)


# Accounts made at once. CSS holds a lock on the account while it writes the new pod, and
# gives up after 6 s: a dozen pods written at once on a loaded machine ran past it (500).
ACCOUNTS_AT_ONCE = 3


async def new_accounts(server: CssServer, *names: str) -> dict[str, PodAccount]:
    """Real accounts on ``server``, each with its own pod and client credentials, a few made
    side by side; NAME logs in as NAME@example.org with the password secret-NAME-0123."""
    turns = asyncio.Semaphore(ACCOUNTS_AT_ONCE)

    async def make(api: AccountApi, name: str) -> PodAccount:
        async with turns:
            return await api.create_pod_account(name, f"{name}@example.org",
                                                f"secret-{name}-0123")

    async with AccountApi(server.base_url) as api:
        made = await asyncio.gather(*(make(api, name) for name in names))
    return dict(zip(names, made, strict=True))


async def new_account(env: PodEnv, name: str) -> PodAccount:
    """One real account of its own on ``env``'s server (see :func:`new_accounts`)."""
    return (await new_accounts(env.server, name))[name]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pod_env(css_server: CssServer) -> PodEnv:
    made = await new_accounts(css_server, "alice", "acme", "bolt")
    return PodEnv(css_server, *made.values())


@pytest_asyncio.fixture(loop_scope="session")
async def alice(pod_env: PodEnv) -> AsyncIterator[PodClient]:
    async with PodClient(pod_env.alice.credentials) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def acme(pod_env: PodEnv) -> AsyncIterator[PodClient]:
    async with PodClient(pod_env.acme.credentials) as client:
        yield client


class CountingPod(PodClient):
    """A real pod client that notes every request it sends (method and URL)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    async def request(self, method: str, url: str, **kwargs: Any) -> PodResponse:
        self.sent.append((method.upper(), url))
        return await super().request(method, url, **kwargs)


@pytest.fixture
def scratch(pod_env: PodEnv, request: pytest.FixtureRequest) -> str:
    """A container URL in alice's pod unique to this test."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"{pod_env.alice.pod}tests/{name}/"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> \
        subprocess.CompletedProcess[str]:
    """Run the real `vrm-agent` command in a child process, as a person would."""
    return subprocess.run(
        [sys.executable, "-m", "vrm_agent.cli.main", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL, check=False,
    )


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    return tmp_path / "agent" / "config.json"


@dataclass(frozen=True)
class RunningAgent:
    url: str
    config: Path
    process: subprocess.Popen[str]
    log: Path


# The suite's agents answer many requests from a few vendor accounts within minutes; the
# quota of new negotiations per vendor is proved by its own test (tests/security/test_quota.py).
SUITE_SETTINGS: dict[str, Any] = {"daemon": {"new_negotiations": {"burst": 100_000}}}


def start_agent(pod_env: PodEnv, folder: Path, account: PodAccount | None = None,
                python_options: Sequence[str] = (),
                settings: Mapping[str, Any] | None = None) -> RunningAgent:
    """`vrm-agent run` for alice (or another account), as a real process on a free port
    (``python_options`` go to its interpreter, such as ``-X importtime``; ``settings`` go into
    its config, SUITE_SETTINGS when none are given)."""
    config = folder / "config.json"
    person = account or pod_env.alice
    login = run_cli("login", "--webid", person.webid, "--client-id", person.client_id,
                    "--client-secret", person.client_secret, "--config", str(config))
    assert login.returncode == 0, login.stderr
    written = json.loads(config.read_text())
    for key, value in (SUITE_SETTINGS if settings is None else settings).items():
        written[key] = {**written.get(key, {}), **value} if isinstance(value, dict) else value
    config.write_text(json.dumps(written))
    port = free_port()
    log = folder / "agent.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, *python_options, "-m", "vrm_agent.cli.main", "run",
             "--port", str(port), "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
        )
    url = f"http://localhost:{port}/"
    import time
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the agent exited at start:\n" + log.read_text())
        try:
            with urllib.request.urlopen(url + "health", timeout=1):
                return RunningAgent(url, config, process, log)
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the agent did not answer within 30 s:\n" + log.read_text())


def stop_agent(agent: RunningAgent) -> int:
    agent.process.terminate()
    try:
        return agent.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        agent.process.kill()
        return agent.process.wait()


@pytest.fixture(scope="session")
def agent(pod_env: PodEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    running = start_agent(pod_env, tmp_path_factory.mktemp(f"agent-{pod_env.flavour.value}"))
    yield running
    stop_agent(running)



@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With xdist, every test of one pod flavour goes to one worker, so each worker starts one
    server and its accounts once, and the two flavours run side by side. The flavour is read
    from the test's parameter ids (``[wac]``, ``[acp-...]``); any other test goes anywhere."""
    from xdist.scheduler import LoadScopeScheduling

    class ByPodFlavour(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            ids = nodeid.rpartition("[")[2].rstrip("]").split("-") if nodeid.endswith("]") \
                else ()
            found = [f.value for f in FLAVOURS if f.value in ids]
            return f"pod-{found[0]}" if found else nodeid

    return ByPodFlavour(config, log)
