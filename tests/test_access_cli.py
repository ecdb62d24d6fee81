"""`vrm-agent share`, `grants` and `grants revoke` as a person runs them, proved by the vendor's
own requests on real CSS (WAC and ACP)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PodEnv, run_cli
from vrm_agent.daemon.expiry import keeper_pid
from vrm_agent.pod import SyncPodClient

pytestmark = pytest.mark.pod


@pytest.fixture
def owner_config(pod_env: PodEnv, cli_config: Path) -> Iterator[Path]:
    alice = pod_env.alice
    result = run_cli("login", "--webid", alice.webid, "--client-id", alice.client_id,
                     "--client-secret", alice.client_secret, "--config", str(cli_config))
    assert result.returncode == 0, result.stderr
    yield cli_config
    pid = keeper_pid(cli_config)  # the detached expiry keeper this test started
    if pid:
        os.kill(pid, signal.SIGTERM)


def vendor_status(pod_env: PodEnv, url: str) -> int:
    with SyncPodClient(pod_env.acme.credentials) as acme:
        return int(acme.request("GET", url, expect_ok=False).status)


def make_resource(pod_env: PodEnv, url: str) -> None:
    with SyncPodClient(pod_env.alice.credentials) as alice:
        alice.put(url, "<#it> <http://schema.org/name> \"cli\".", content_type="text/turtle")


def cli(config: Path, *args: str) -> dict | list:  # type: ignore[type-arg]
    result = run_cli(*args, "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_share_list_revoke(pod_env: PodEnv, owner_config: Path) -> None:
    url = pod_env.alice.pod + "tests/cli-share/card"
    make_resource(pod_env, url)
    assert vendor_status(pod_env, url) == 403
    grant = cli(owner_config, "share", url, "--with", pod_env.acme.webid, "--for", "1h")
    assert vendor_status(pod_env, url) == 200
    listed = cli(owner_config, "grants", "--resource", url)
    assert isinstance(listed, list) and len(listed) == 1
    entry = listed[0]
    assert {"id", "agent", "resources", "modes", "expires"} <= set(entry)
    assert entry["id"] == grant["id"] and entry["agent"] == pod_env.acme.webid  # type: ignore[index]
    assert entry["resources"] == [url] and entry["modes"] == ["Read"]
    assert cli(owner_config, "grants", "--agent", "http://nobody.example/#me") == []
    cli(owner_config, "grants", "revoke", entry["id"])
    assert vendor_status(pod_env, url) == 403
    assert cli(owner_config, "grants", "--resource", url) == []


def test_share_ends_on_time_without_a_daemon(pod_env: PodEnv, owner_config: Path) -> None:
    url = pod_env.alice.pod + "tests/cli-expiry/card"
    make_resource(pod_env, url)
    cli(owner_config, "share", url, "--with", pod_env.acme.webid, "--for", "3s")
    assert vendor_status(pod_env, url) == 200
    deadline = time.monotonic() + 10
    while keeper_pid(owner_config) is None and time.monotonic() < deadline:
        time.sleep(0.1)  # the detached keeper is starting
    assert keeper_pid(owner_config) is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and vendor_status(pod_env, url) == 200:
        time.sleep(0.5)
    assert vendor_status(pod_env, url) == 403


@pytest.mark.parametrize(("args", "message", "code"), [
    (["--for", "soon"], "is not a duration", 2),  # refused while reading the command line
    (["--until", "2001-01-01T00:00:00Z"], "not in the future", 1),
    (["--with-class"], None, 1),
])
def test_bad_share_requests(
    pod_env: PodEnv, owner_config: Path, args: list[str], message: str | None, code: int
) -> None:
    url = pod_env.alice.pod + "tests/cli-bad/card"
    make_resource(pod_env, url)
    if message is None:  # a class of agents, not one WebID
        args = ["--with", "http://xmlns.com/foaf/0.1/Agent"]
        message = "not a class"
    else:
        args = ["--with", pod_env.acme.webid, *args]
    result = run_cli("share", url, *args, "--config", str(owner_config))
    assert result.returncode == code and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert vendor_status(pod_env, url) == 403


def test_revoking_an_unknown_grant(owner_config: Path) -> None:
    result = run_cli("grants", "revoke", "no-such-grant", "--config", str(owner_config))
    assert result.returncode == 1 and "no grant no-such-grant" in result.stderr


def test_sharing_a_missing_resource(pod_env: PodEnv, owner_config: Path) -> None:
    url = pod_env.alice.pod + "tests/cli-missing/nothing"
    result = run_cli("share", url, "--with", pod_env.acme.webid, "--config", str(owner_config))
    assert result.returncode == 1 and "not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_listings_name_the_vendors_the_ledger_knows(pod_env: PodEnv, owner_config: Path) -> None:
    acme = pod_env.acme.webid
    url = pod_env.alice.pod + "tests/cli-named/card"
    make_resource(pod_env, url)
    added = cli(owner_config, "vendors", "add", "ACME Tools", "--id", "acme-tools-cli",
                "--webid", acme, "--since", "2025-01-31")
    assert added == {"id": "acme-tools-cli", "name": "ACME Tools", "state": "prospect",  # type: ignore[comparison-overlap]
                     "since": "2025-01-31", "url": None, "webid": acme,
                     "resource": pod_env.alice.pod + "vrm/vendors/acme-tools-cli"}
    view = cli(owner_config, "share", url, "--with", acme, "--for", "1h")
    try:
        rows = cli(owner_config, "grants", "--resource", url)
        row = next(r for r in rows if r["id"] == view["id"])  # type: ignore[index]
        assert (row["agent"], row["agent_name"], row["resources"]) == (acme, "ACME Tools", [url])
        table = run_cli("grants", "--resource", url, "--config", str(owner_config))
        line = next(line for line in table.stdout.splitlines() if view["id"] in line)  # type: ignore[index]
        assert "ACME Tools" in line and acme not in line
    finally:
        cli(owner_config, "grants", "revoke", str(view["id"]))  # type: ignore[index]
