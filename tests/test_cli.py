"""The `vrm-agent` command as a person runs it: a child process, its stdout, stderr and exit."""

from __future__ import annotations

import json
import stat
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.conftest import PodEnv, RunningAgent, run_cli
from vrm_agent.config import Config
from vrm_agent.pod.auth import ClientCredentials
from vrm_agent.podserver.process import free_port

pytestmark = pytest.mark.pod


def assert_one_clear_line(result: object, *fragments: str) -> None:
    assert result.returncode == 1, result  # type: ignore[attr-defined]
    stderr = result.stderr.strip()  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith("vrm-agent: error: ")
    for fragment in fragments:
        assert fragment in stderr, stderr


def test_login_then_whoami(pod_env: PodEnv, cli_config: Path) -> None:
    alice = pod_env.alice
    login = run_cli("login", "--webid", alice.webid, "--client-id", alice.client_id,
                    "--client-secret", alice.client_secret, "--config", str(cli_config))
    assert login.returncode == 0, login.stderr
    secrets = cli_config.with_name("config.secrets.json")
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert alice.client_secret not in cli_config.read_text()
    whoami = run_cli("whoami", "--json", "--config", str(cli_config))
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout) == {
        "webid": alice.webid, "issuer": pod_env.server.base_url, "storage": alice.pod,
    }
    plain = run_cli("--config", str(cli_config), "whoami")
    assert f"storage: {alice.pod}" in plain.stdout


def test_wrong_secret_stores_nothing(pod_env: PodEnv, cli_config: Path) -> None:
    alice = pod_env.alice
    result = run_cli("login", "--webid", alice.webid, "--client-id", alice.client_id,
                     "--client-secret", "wrong", "--config", str(cli_config))
    assert_one_clear_line(result, "refused the client id or secret")
    assert not cli_config.exists()


def test_whoami_before_login(cli_config: Path) -> None:
    assert_one_clear_line(run_cli("whoami", "--config", str(cli_config)), "not logged in")


def test_unreachable_pod(cli_config: Path) -> None:
    webid = f"http://localhost:{free_port()}/me/profile/card#me"
    result = run_cli("login", "--webid", webid, "--client-id", "x", "--client-secret", "y",
                     "--config", str(cli_config))
    assert_one_clear_line(result, "no answer from")


class _NotSolid(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {
        "/blog": ("text/html", b"<html><body>just a blog</body></html>"),
        "/broken": ("text/turtle", b"<#me> <#knows> this is not turtle"),
    }

    def do_GET(self) -> None:
        content_type, body = self.pages.get(self.path, ("text/plain", b"nothing"))
        self.send_response(200 if self.path in self.pages else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def not_solid() -> Iterator[str]:
    server = ThreadingHTTPServer(("localhost", free_port()), _NotSolid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(("path", "expected"), [
    ("/blog#me", "text/html is not an RDF type"),
    ("/broken#me", "cannot be read"),
    ("/missing#me", "no WebID profile there"),
])
def test_urls_that_are_no_solid_server(
    not_solid: str, cli_config: Path, path: str, expected: str
) -> None:
    result = run_cli("login", "--webid", not_solid + path, "--client-id", "x",
                     "--client-secret", "y", "--config", str(cli_config))
    assert_one_clear_line(result, expected)


def test_help_everywhere() -> None:
    for command in ([], ["login"], ["whoami"], ["pod"], ["pod", "up"], ["pod", "status"],
                    ["pod", "down"]):
        result = run_cli(*command, "--help")
        assert result.returncode == 0 and "usage: vrm-agent" in result.stdout, command


def _pod(tmp_path: Path, *args: str, expect: int = 0) -> dict[str, object]:
    config = tmp_path / "config.json"
    result = run_cli("pod", *args, "--json", "--config", str(config), "--data", str(tmp_path / "d"))
    assert result.returncode == expect, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


def _status(tmp_path: Path, expect: int) -> dict[str, object]:
    """`pod status`, asking for the agent where none listens: its exit says what runs."""
    return _pod(tmp_path, "status", "--agent-url", f"http://localhost:{free_port()}/",
                expect=expect)


@pytest.mark.parametrize("acp", [False, True], ids=["wac", "acp"])
def test_embedded_pod_lifecycle(tmp_path: Path, acp: bool) -> None:
    port = free_port()
    first = _pod(tmp_path, "up", "--port", str(port), *(["--acp"] if acp else []))
    try:
        assert first["webid"] == f"http://localhost:{port}/me/profile/card#me"
        assert first["storage"] == f"http://localhost:{port}/me/"
        assert first["flavour"] == ("acp" if acp else "wac")
        status = _status(tmp_path, expect=4)  # the pod runs, the agent does not
        assert (status["status"], status["agent"], status["flavour"]) == (
            "running", "not running", first["flavour"])
        # The vocabulary was copied into the pod where anyone may read it.
        with urllib.request.urlopen(str(first["vocabulary"]), timeout=5) as response:
            assert response.status == 200
            assert b"vrm-agent" in response.read()
        whoami = run_cli("whoami", "--json", "--config", str(tmp_path / "config.json"))
        assert json.loads(whoami.stdout)["webid"] == first["webid"]
        # A second `pod up` while it runs changes nothing.
        assert _pod(tmp_path, "up")["pid"] == first["pid"]
        assert _pod(tmp_path, "down")["stopped"] is True
        assert _status(tmp_path, expect=3)["status"] == "stopped"
        # It comes back with the same account, pod and credentials.
        again = _pod(tmp_path, "up")
        assert again["webid"] == first["webid"] and again["pid"] != first["pid"]
        if not acp:  # data made for WAC cannot be served as ACP
            mismatch = run_cli("pod", "up", "--acp", "--config", str(tmp_path / "config.json"),
                               "--data", str(tmp_path / "d"))
            assert_one_clear_line(mismatch, "uses WAC")
    finally:
        _pod(tmp_path, "down")
    assert _status(tmp_path, expect=3)["status"] == "stopped"


def test_pod_status_with_the_agent_running(agent: RunningAgent, tmp_path: Path) -> None:
    # A pod of one's own (not the embedded one) and this person's agent: both run, exit 0.
    result = run_cli("pod", "status", "--json", "--config", str(agent.config),
                     "--data", str(tmp_path / "no-embedded-pod"), "--agent-url", agent.url)
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    assert (status["status"], status["embedded"], status["agent"], status["agent_pod"]) == (
        "running", False, "running", "reachable")


def test_pod_status_tells_another_persons_agent_from_ones_own(
    agent: RunningAgent, cli_config: Path, tmp_path: Path
) -> None:
    someone = Config.load(cli_config)
    someone.set_credentials(ClientCredentials("http://localhost:1/someone/card#me", "i", "s"))
    someone.save()
    result = run_cli("pod", "status", "--json", "--config", str(cli_config), "--data",
                     str(tmp_path / "d"), "--agent-url", agent.url)
    # No pod here, and the agent there acts for alice: the pod is what is missing first.
    assert result.returncode == 3, result.stderr
    status = json.loads(result.stdout)
    assert (status["status"], status["agent"]) == ("not created", "another's")
    result = run_cli("pod", "status", "--config", str(cli_config), "--data",
                     str(tmp_path / "d"), "--agent-url", agent.url)
    assert "vrm-agent pod up" in result.stderr and "Traceback" not in result.stderr
