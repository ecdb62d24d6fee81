"""Every command, given bad input, answers in one line on stderr with a non-zero exit, never a
traceback. The commands are found by walking the parser, so a command added later is held to
the same rule without being named here.

The bad inputs: an option that does not exist, every typed option with a value of the wrong
form (dates, addresses, durations, ports), a pod that does not answer (a config naming a port
nothing listens on), a port another program holds, a reader that closes the pipe, an
unexpected failure, and, on a real pod, ids that name nothing."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import PodEnv, new_account, run_cli
from vrm_agent.cli import arguments, intent_commands, ledger_commands
from vrm_agent.cli.errors import EXIT_BROKEN_PIPE, Situation, explain
from vrm_agent.cli.main import build_parser, main
from vrm_agent.config import Config
from vrm_agent.errors import PodError, PodUnreachable
from vrm_agent.ledger.store import RecordExists
from vrm_agent.pod.auth import ClientCredentials
from vrm_agent.podserver.process import free_port

Leaf = tuple[tuple[str, ...], argparse.ArgumentParser]


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every command that runs something: a parser with a handler, and the commands under it."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if parser.get_default("handler") is not None:
        yield path, parser
    for action in subparsers:
        for name, child in action.choices.items():
            yield from leaves(child, (*path, name))


ALL = sorted(leaves(build_parser()), key=lambda leaf: leaf[0])
IDS = [" ".join(path) for path, _ in ALL]
BAD_VALUES = {arguments.iso_date: "31.12.2025", arguments.http_iri: "shop.example.com",
              arguments.duration: "a fortnight", arguments.moment: "tomorrow noon",
              arguments.port_number: "99999", intent_commands.budget: "1e3",
              intent_commands.currency_code: "euro"}
GOOD_VALUES = {intent_commands.budget: "100", intent_commands.currency_code: "EUR"}


def assert_one_line(result: subprocess.CompletedProcess[str] | tuple[int, str],
                    *fragments: str) -> str:
    code, stderr = (result.returncode, result.stderr) if isinstance(
        result, subprocess.CompletedProcess) else result
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_the_walk_finds_the_commands() -> None:
    found = set(IDS)
    assert {"vendors", "vendors add", "grants revoke", "pod status", "run", "up",
            "requests approve", "terms add", "import transactions"} <= found


class Fill:
    """Values that read well for a command's required arguments, so what is tested is the one
    bad thing, not a missing argument."""

    def __init__(self, folder: Path, dead_port: int) -> None:
        self.iri = f"http://localhost:{dead_port}/me/profile/card#me"
        self.junk = folder / "junk.csv"
        self.junk.write_text("not,a,ledger\n\x00\x01\n")

    def value(self, action: argparse.Action) -> str:
        if action.choices:
            return str(next(iter(action.choices)))
        if action.type is arguments.http_iri:
            return self.iri
        if action.type in (arguments.port_number,):
            return str(free_port())
        if action.dest == "file":
            return str(self.junk)
        if action.type in GOOD_VALUES:
            return GOOD_VALUES[action.type]  # type: ignore[index]
        return "no-such-id"

    def required(self, parser: argparse.ArgumentParser) -> list[str]:
        argv: list[str] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.dest == "help":
                continue
            if not action.option_strings and action.nargs != "?":
                argv.append(self.value(action))
            elif action.option_strings and action.required:
                argv += [action.option_strings[0], self.value(action)]
        for group in parser._mutually_exclusive_groups:  # one of them is required: the first
            if group.required:
                first = group._group_actions[0]
                argv += [first.option_strings[0]] + ([] if first.nargs == 0
                                                     else [self.value(first)])
        return argv


@pytest.fixture(scope="module")
def dead_pod(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[str, str]]:
    """A config logged in to a pod at a port nothing listens on, and folders of its own, so no
    command here reaches the person's real config or data."""
    folder = tmp_path_factory.mktemp("dead-pod")
    port = free_port()
    config = Config.load(folder / "config.json")
    config.set_credentials(ClientCredentials(f"http://localhost:{port}/me/profile/card#me",
                                             "client", "secret"))
    config.settings["storage"] = f"http://localhost:{port}/me/"
    config.save()
    env = {"XDG_CONFIG_HOME": str(folder / "xdg-config"), "XDG_DATA_HOME": str(folder / "xdg"),
           "VRM_AGENT_CONFIG": str(folder / "config.json")}
    return folder / "config.json", port, env


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("path", "parser"), ALL, ids=IDS)
def test_an_unknown_option_is_one_usage_line(
    path: tuple[str, ...], parser: argparse.ArgumentParser, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [*path, *Fill(tmp_path, free_port()).required(parser), "--no-such-option"]
    code, stderr = run_main(argv, capsys)
    line = assert_one_line((code, stderr), "--no-such-option", "--help")
    assert code == 2 and line.startswith("vrm-agent: error: ")


TYPED = [(path, action) for path, parser in ALL for action in parser._actions
         if action.type in BAD_VALUES]


@pytest.mark.parametrize(("path", "action"), TYPED,
                         ids=[f"{' '.join(p)} {a.option_strings or a.dest}" for p, a in TYPED])
def test_a_value_of_the_wrong_form_is_refused_while_reading_the_command(
    path: tuple[str, ...], action: argparse.Action, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = dict(ALL)[path]
    fill = Fill(tmp_path, free_port())
    argv = [*path, *(a for a in fill.required(parser))]
    bad = BAD_VALUES[action.type]  # type: ignore[index]
    if action.option_strings:
        argv += [action.option_strings[0], bad]
    else:  # a positional: the bad value in its place
        argv[argv.index(fill.value(action))] = bad
    code, stderr = run_main([*argv, "--config", str(tmp_path / "none.json")], capsys)
    assert code == 2
    assert_one_line((code, stderr), repr(bad))


def test_relative_iris_are_refused() -> None:
    for text in ("shop", "shop.example.com", "/me/card#me", "mailto:a@b.example", "http://",
                 "https://exa mple.org/", "http://host:99999/"):
        with pytest.raises(argparse.ArgumentTypeError):
            arguments.http_iri(text)
    assert arguments.http_iri("https://shop.example.com/") == "https://shop.example.com/"


def _local_cases(dead: Path, port: int, busy: int, folder: Path) -> dict[str, list[str]]:
    """The commands that run without the pod, each with the bad input that applies to it;
    every other command gets a pod that does not answer. A new command that needs no pod
    (and so succeeds there) belongs here."""
    not_a_folder = folder / "a-file"
    not_a_folder.write_text("")
    return {
        "pod up": ["--port", str(busy), "--data", str(folder / "new-pod")],
        "up": ["--port", str(busy), "--data", str(folder / "new-pod")],
        "run": ["--port", str(busy)],
        "vocab serve": ["--port", str(busy)],
        "pod down": ["--data", str(not_a_folder)],
        "pod status": ["--data", str(folder / "no-pod")],  # exit 3: the pod is not running
        "vendor-demo": ["--vendor-config", str(dead), "--person",
                        f"http://localhost:{port}/me/profile/card#me"],
    }


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
def test_every_command_with_the_pod_down_or_its_port_taken(
    dead_pod: tuple[Path, int, dict[str, str]], busy_port: int, tmp_path: Path,
    json_output: bool,
) -> None:
    config, port, env = dead_pod
    local = _local_cases(config, port, busy_port, tmp_path)
    fill = Fill(tmp_path, port)

    def one(leaf: Leaf) -> tuple[str, subprocess.CompletedProcess[str]]:
        path, parser = leaf
        name = " ".join(path)
        argv = [*path, *(local[name] if name in local else fill.required(parser))]
        argv += ["--config", str(config)] + (["--json"] if json_output else [])
        return name, run_cli(*argv, env=env, timeout=60)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(pool.map(one, ALL))
    for name, result in results.items():
        if name in ("run", "up", "vocab serve", "pod up"):
            assert_one_line(result, f"port {busy_port}", "in use")
        elif name == "pod status":
            assert result.returncode == 3, result
            assert "Traceback" not in result.stderr
        elif name in local:
            assert_one_line(result)
        else:
            assert_one_line(result)
            # A command that needs the pod says which and what to do, unless it refused the
            # input before trying.
            if "no answer" in result.stderr and name != "login":
                assert f"the pod at http://localhost:{port}" in result.stderr, name
                assert "vrm-agent pod up" in result.stderr, name
    assert "no answer from the pod" in results["vendors"].stderr


@pytest.mark.parametrize("argv", [["pod", "status", "--json"], ["pod", "status"],
                                  ["--help"]], ids=["json", "table", "help"])
def test_a_closed_pipe_ends_quietly(
    dead_pod: tuple[Path, int, dict[str, str]], tmp_path: Path, argv: list[str],
) -> None:
    config, _port, env = dead_pod
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as `| head` may be
    try:
        result = subprocess.run(
            [sys.executable, "-m", "vrm_agent.cli.main", *argv, "--config", str(config),
             *(["--data", str(tmp_path / "no-pod")] if argv[0] == "pod" else [])],
            stdout=write_end, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, **env}, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr, result.stderr
    if argv != ["--help"]:  # argparse's own help swallows the error and exits 0
        assert result.returncode == EXIT_BROKEN_PIPE
        assert "vrm-agent: error" not in result.stderr


def test_an_unexpected_failure_is_one_line_with_the_way_to_see_more(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(args: argparse.Namespace, config: Config) -> int:
        return {}["missing"]  # type: ignore[no-any-return]

    monkeypatch.setattr(ledger_commands, "cmd_stats", broken)
    argv = ["stats", "--config", str(tmp_path / "config.json")]
    monkeypatch.delenv("VRM_AGENT_DEBUG", raising=False)
    line = assert_one_line(run_main(argv, capsys), "KeyError", "VRM_AGENT_DEBUG=1")
    assert line.startswith("vrm-agent: error: unexpected failure")
    monkeypatch.setenv("VRM_AGENT_DEBUG", "1")
    with pytest.raises(KeyError):
        main(argv)


def test_what_a_pod_said_cannot_add_lines_or_controls() -> None:
    hostile = PodError("the pod refused the write", method="PUT", url="http://pod.example/a",
                       status=400, server_message="bad\nvrm-agent: ok\x1b[2J")
    message, code = explain(hostile)
    assert code == 1 and "\n" not in message and "\x1b" not in message
    assert "(PUT http://pod.example/a -> 400)" in message


def test_an_unreachable_pod_points_to_the_next_step() -> None:
    down = PodUnreachable("no answer from http://localhost:3000 (ClientConnectorError)",
                          method="GET", url="http://localhost:3000/me/profile/card#me")
    embedded, _ = explain(down, Situation(command="vendors", embedded_pod=True))
    assert embedded == ("no answer from the pod at http://localhost:3000; start it with "
                        "'vrm-agent pod up'")
    own, _ = explain(down, Situation(command="vendors"))
    assert "ClientConnectorError" not in own and "'vrm-agent login'" in own
    login, _ = explain(down, Situation(command="login"))
    assert "check the WebID's address" in login


def test_a_record_that_exists_says_how_to_go_on() -> None:
    message, _ = explain(RecordExists("contactunit email-home exists"))
    assert message == "contact unit email-home exists; choose another id with --id"


def test_a_taken_port_is_found_before_listening(busy_port: int) -> None:
    with pytest.raises(arguments.PortInUse, match=f"port {busy_port} on localhost is in use"):
        arguments.ensure_port_free("localhost", busy_port, what="the agent", option="--port")
    arguments.ensure_port_free("localhost", free_port(), what="the agent", option="--port")


# -- on a real pod: ids that name nothing ------------------------------------------------------

UNKNOWN_IDS = [
    (["terms", "show", "no-such-terms"], "no terms named"),
    (["terms", "remove", "no-such-terms"], "no terms named"),
    (["negotiations", "show", "nosuchnegotiation"], "nosuchnegotiation"),
    (["requests", "approve", "nosuchnegotiation"], "nosuchnegotiation"),
    (["requests", "deny", "nosuchnegotiation"], "nosuchnegotiation"),
    (["grants", "revoke", "no-such-grant"], "no-such-grant"),
    (["intent", "show", "no-such-intent"], "no intent 'no-such-intent'"),
    (["intent", "close", "no-such-intent"], "no intent 'no-such-intent'"),
    (["intent", "offers", "no-such-intent"], "no intent 'no-such-intent'"),
    (["intent", "accept", "no-such-intent", "no-such-offer"], "no intent 'no-such-intent'"),
    (["intent", "add", "a bike", "--budget", "900", "--currency", "EUR", "--vendor",
      "no-such-vendor"], "no vendor 'no-such-vendor'"),
]


@pytest.mark.pod
def test_unknown_ids_on_a_real_pod(pod_env: PodEnv, tmp_path: Path) -> None:
    # A person of their own: other tests leave hostile entries in alice's grant index on
    # purpose, and the warnings about them would be lines of their own.
    import asyncio


    config = tmp_path / "config.json"
    alice = asyncio.run(new_account(pod_env, "ids"))
    login = run_cli("login", "--webid", alice.webid, "--client-id", alice.client_id,
                    "--client-secret", alice.client_secret, "--config", str(config))
    assert login.returncode == 0, login.stderr

    def one(case: tuple[list[str], str]) -> None:
        argv, fragment = case
        assert_one_line(run_cli(*argv, "--config", str(config)), fragment)

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(one, UNKNOWN_IDS))
