"""vrm-agent conformance: the protocol's checks against another implementation, an agent (the
kit acts as a vendor) or a vendor's callback inbox (the kit acts as an agent). Results as a
table, JSON with --json, JUnit XML with --junit; exit 0 only when no check failed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrm_agent.cli.output import info
from vrm_agent.config import Config, read_json, write_private
from vrm_agent.errors import ConfigError

if TYPE_CHECKING:  # the handlers import what they run (see daemon_commands)
    from vrm_agent.conformance.results import Check, Result
    from vrm_agent.integrity.keys import SigningKey

EXIT_CHECKS_FAILED = 3


def _url(value: str, what: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace()
                                                                          for c in value):
        raise ConfigError(f"{what} must be an absolute http(s) URL, not {value[:100]!r}")
    return value


def _credentials(path: str, option: str) -> Any:
    config_path = Path(path).expanduser()
    if not config_path.is_file():
        raise ConfigError(f"{option} {config_path}: no such file; make one with "
                          f"'vrm-agent login --config {config_path} ...' for the vendor")
    return Config.load(config_path).credentials()


def _only(args: argparse.Namespace, checks: tuple[Check[Any], ...]) -> set[str]:
    known = {c.id for c in checks}
    wanted = set(args.only or [])
    unknown = sorted(wanted - known)
    if unknown:
        raise ConfigError(f"no check named {unknown[0]!r}; 'vrm-agent conformance "
                          f"{args.conformance_command} --list' lists them")
    return wanted


def _list(checks: tuple[Check[Any], ...]) -> int:
    width = max(len(c.id) for c in checks)
    for c in checks:
        print(f"{c.id:<{width}}  §{c.section:<4}  {c.description}")
    return 0


def _report(args: argparse.Namespace, results: list[Result], *, suite: str,
            target: str) -> int:
    from vrm_agent.conformance.results import failed, junit_xml, print_table

    if args.junit:
        path = Path(args.junit).expanduser()
        try:
            path.write_bytes(junit_xml(results, suite=suite, target=target))
        except OSError as exc:
            raise ConfigError(f"the JUnit report cannot be written to {path} "
                              f"({exc.strerror or exc}); check the folder exists") from None
    if args.json:
        print(json.dumps([{"id": r.id, "section": r.section, "description": r.description,
                           "outcome": r.outcome.value, "detail": r.detail,
                           "seconds": round(r.seconds, 3)} for r in results], indent=2))
    else:
        print_table(results, title=f"{suite}: {target}")
    return EXIT_CHECKS_FAILED if failed(results) else 0


async def cmd_conformance_agent(args: argparse.Namespace, config: Config) -> int:
    import aiohttp

    from vrm_agent.conformance.agent import CHECKS, AgentRun
    from vrm_agent.conformance.expectations import load_expectations
    from vrm_agent.conformance.http import Caller
    from vrm_agent.conformance.runner import run_checks
    from vrm_agent.integrity.keys import SigningKey
    from vrm_agent.pod.client import PodClient

    if args.list:
        return _list(CHECKS)
    if not args.url or not args.vendor_config:
        raise ConfigError("give the agent (a WebID or the agent's URL) and --vendor-config "
                          "with the vendor's credentials")
    target = _url(args.url, "the agent")
    only = _only(args, CHECKS)
    scenarios = load_expectations(Path(args.expectations).expanduser()
                                  if args.expectations else None)
    vendor = _credentials(args.vendor_config, "--vendor-config")
    other = (_credentials(args.other_vendor_config, "--other-vendor-config")
             if args.other_vendor_config else None)
    async with PodClient(vendor) as pod, aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), trust_env=False) as session:
        other_pod = PodClient(other) if other is not None else None
        if other_pod is not None:
            await other_pod.open()
        try:
            run = AgentRun(target, Caller(session, pod), Caller(session), scenarios, pod,
                           SigningKey(), Caller(session, other_pod) if other_pod else None,
                           strict=args.strict, expiry=not args.no_expiry)
            info(f"conformance: checking the agent of {target} as {vendor.webid}")
            try:
                results = await run_checks(CHECKS, run, only=only)
            finally:
                await run.close_all()
        finally:
            if other_pod is not None:
                await other_pod.close()
    return _report(args, results, suite="agent", target=target)


def _read_key(path_text: str) -> SigningKey:
    from vrm_agent.integrity.keys import KeyFormatError, SigningKey

    path = Path(path_text).expanduser()
    saved = read_json(path) if path.is_file() else {}
    secret = saved.get("signing_key")
    if not isinstance(secret, str):
        raise ConfigError(f"--key {path}: no key there; make one with 'vrm-agent conformance "
                          f"keygen {path}'")
    try:
        return SigningKey.from_secret(secret)
    except KeyFormatError:
        raise ConfigError(f"--key {path}: not a key this kit made; make a new one with "
                          f"'vrm-agent conformance keygen {path}'") from None


async def cmd_conformance_vendor(args: argparse.Namespace, config: Config) -> int:
    import secrets

    import aiohttp

    from vrm_agent.conformance.runner import run_checks
    from vrm_agent.conformance.vendor import CHECKS, VendorRun
    from vrm_agent.integrity.keys import SigningKey
    from vrm_agent.negotiation.callbacks import CallbackRejected, normalise

    if args.list:
        return _list(CHECKS)
    if not args.url or not args.key or not args.agent_url:
        raise ConfigError("give the vendor's callback address, --key FILE and --agent-url URL "
                          "(the agent the vendor trusts that key for)")
    try:  # an agent signs the canonical spelling of the callback address (§3.3)
        inbox = normalise(_url(args.url, "the callback address")).url
    except CallbackRejected as exc:
        raise ConfigError(f"the callback address cannot be used: {exc}") from None
    agent = _url(args.agent_url, "--agent-url")
    agent = agent if agent.endswith("/") else agent + "/"
    negotiation = (_url(args.negotiation, "--negotiation") if args.negotiation
                   else f"{agent}negotiations/{secrets.token_hex(8)}")
    only = _only(args, CHECKS)
    key = _read_key(args.key)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                     trust_env=False) as session:
        run = VendorRun(inbox, key, agent, negotiation, session, SigningKey())
        info(f"conformance: checking the inbox {inbox} as the agent {agent}")
        results = await run_checks(CHECKS, run, only=only)
    return _report(args, results, suite="vendor", target=inbox)


def cmd_conformance_keygen(args: argparse.Namespace, config: Config) -> int:
    from vrm_agent.integrity.keys import SigningKey

    path = Path(args.file).expanduser()
    if path.exists() and not args.replace:
        raise ConfigError(f"{path} exists; pass --replace to make a new key there")
    key = SigningKey()
    try:
        write_private(path, {"signing_key": key.secret,
                             "verification_method": key.verification_method})
    except OSError as exc:
        raise ConfigError(f"the key cannot be written to {path} ({exc.strerror or exc})") \
            from None
    if args.json:
        print(json.dumps({"file": str(path), "verification_method": key.verification_method}))
    else:
        print(key.verification_method)
    return 0


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    kit = commands.add_parser(
        "conformance", parents=[common], help="check another implementation of the protocol",
        description="The protocol's conformance checks (docs/protocol.md §15): against an "
        "agent, acting as a vendor; or against a vendor's callback inbox, acting as an agent. "
        "Exit 0 when no check failed, 3 when one did.")
    which = kit.add_subparsers(dest="conformance_command", required=True, metavar="TARGET")

    agent = which.add_parser("agent", parents=[common], help="check an agent, as a vendor",
                             description="Negotiate with the agent of a WebID (or at an "
                             "agent URL) as the vendor of --vendor-config, and check each "
                             "answer against the protocol.")
    agent.add_argument("url", nargs="?", metavar="URL",
                       help="the person's WebID or the agent's URL")
    agent.add_argument("--vendor-config", metavar="PATH",
                       help="a config file with the vendor's credentials (vrm-agent login)")
    agent.add_argument("--other-vendor-config", metavar="PATH",
                       help="a second vendor, for the check that negotiations are private")
    agent.add_argument("--expectations", metavar="FILE",
                       help="TOML or JSON: which request the agent's terms agree to, counter, "
                       "refuse or leave to the person (default: the starter terms')")
    agent.add_argument("--strict", action="store_true",
                       help="fail, rather than skip, when the terms answer otherwise")
    agent.add_argument("--no-expiry", action="store_true",
                       help="do not wait for a short agreement to end")
    _shared(agent)
    agent.set_defaults(handler=cmd_conformance_agent)

    vendor = which.add_parser("vendor", parents=[common],
                              help="check a vendor's callback inbox, as an agent",
                              description="Send signed and badly signed notifications to a "
                              "vendor's callback address; the vendor must trust --key for "
                              "--agent-url.")
    vendor.add_argument("url", nargs="?", metavar="CALLBACK_URL",
                        help="the vendor's callback address")
    vendor.add_argument("--key", metavar="FILE", help="the key made by 'conformance keygen'")
    vendor.add_argument("--agent-url", metavar="URL",
                        help="the agent URL the vendor trusts the key for")
    vendor.add_argument("--negotiation", metavar="URL",
                        help="a negotiation the vendor holds with that agent (default: a new "
                        "id under the agent URL)")
    _shared(vendor)
    vendor.set_defaults(handler=cmd_conformance_vendor)

    keygen = which.add_parser("keygen", parents=[common],
                              help="make the key 'conformance vendor' signs with",
                              description="Write a new Ed25519 key to FILE (mode 0600) and "
                              "print its did:key verification method, for the vendor to trust.")
    keygen.add_argument("file", metavar="FILE")
    keygen.add_argument("--replace", action="store_true", help="overwrite an existing FILE")
    keygen.set_defaults(handler=cmd_conformance_keygen)


def _shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML")
    parser.add_argument("--only", action="append", metavar="CHECK",
                        help="run only this check (repeatable; --list names them)")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
