"""The README's way in, as a person would take it: `vrm-agent up` (the embedded pod and the
agent), contact data added, then the example vendor negotiating with the agent and reading what
it was granted, with its own account on the same pod server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_cli
from vrm_agent.podserver.process import free_port

pytestmark = pytest.mark.pod


def wait_for_health(url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("`vrm-agent up` exited:\n" + log.read_text())
        try:
            with urllib.request.urlopen(url + "health", timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the agent did not answer within 120 s:\n" + log.read_text())


def test_up_then_the_vendor_demo(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    agent_port = free_port()
    log = tmp_path / "up.log"
    common = ["--config", str(config)]
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "vrm_agent.cli.main", "up", "--port", str(agent_port),
             "--pod-port", str(free_port()), "--data", str(tmp_path / "pod"), *common],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        url = f"http://localhost:{agent_port}/"
        wait_for_health(url, process, log)
        said = log.read_text()
        assert "vrm-agent is running at" in said
        assert f"Your dashboard: {url}dashboard" in said
        # The embedded pod's login, which the dashboard's login goes through: where it is kept.
        state = tmp_path / "pod" / "embedded-pod.json"
        assert f"e-mail me@vrm-agent.localhost, password in {state}" in said
        assert json.loads(state.read_text())["owner"]["password"] not in said
        added = run_cli("contact", "add", "email", "me@example.org", "--label", "home", *common)
        assert added.returncode == 0, added.stderr
        demo = run_cli("vendor-demo", "--json", "--wait", "20", *common)
        assert demo.returncode == 0, demo.stderr
        summary = json.loads(demo.stdout)
        assert summary["state"] == "FINALIZED"
        (resource,) = summary["resources"]
        assert resource.endswith("/contact/email-home")
        assert summary["reads"] == {resource: 200}
        # The demo vendor is a second account on the embedded server, reused on the next run.
        again = run_cli("vendor-demo", "--json", "--wait", "20", *common)
        assert json.loads(again.stdout)["state"] == "FINALIZED"
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        down = run_cli("pod", "down", *common)
        assert down.returncode == 0, down.stderr
