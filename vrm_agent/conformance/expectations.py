"""What the agent's terms answer: the kit cannot set a person's terms, so the harness tells it
which request each path needs (an expectations file, TOML or JSON). The defaults suit this
project's starter terms (docs/protocol.md §12) and a person who holds an e-mail address.

A file has up to five sections, each optional; an absent key keeps its default::

    [agree]      # a request the terms agree to at once
    ask = ["pd:EmailAddress"]
    purpose = "dpv:DeliveryOfGoods"
    duration = "P7D"

    [counter]    # one they answer with a narrower offer
    [refuse]     # one they refuse
    [person]     # one they leave to the person
    [expiry]     # one they agree to for a few seconds (then the agreement must end)
    skip = true  # the agent's terms answer no request this way: its checks are skipped
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vrm_agent.errors import ConfigError
from vrm_agent.negotiation.durations import requested_duration

MAX_FILE_BYTES = 65_536
MAX_TARGETS = 16
# What a request's targets and purpose may be: a compact IRI of the protocol's prefixes or an
# absolute http(s) URL, without characters an IRI cannot hold.
_TERM = re.compile(r"(?:pd|dpv|odrl|vrm):[A-Za-z][A-Za-z0-9_-]{0,120}"
                   r"|https?://[^\s<>\"{}|\\^`]{1,2040}")


@dataclass(frozen=True)
class Scenario:
    """One request the kit sends, and the answer the harness says the terms give to it."""

    name: str
    answer: str  # agree, counter, refuse, person
    ask: tuple[str, ...]
    purpose: str
    duration: str
    skip: bool = False

    def describe(self) -> str:
        return f"{', '.join(self.ask)} for {self.purpose} for {self.duration}"


DEFAULTS: dict[str, Scenario] = {
    "agree": Scenario("agree", "agree", ("pd:EmailAddress",), "dpv:DeliveryOfGoods", "P7D"),
    # Service provision is allowed for at most 90 days by sd-base: 180 is countered.
    "counter": Scenario("counter", "counter", ("pd:EmailAddress",), "dpv:ServiceProvision",
                        "P180D"),
    "refuse": Scenario("refuse", "refuse", ("pd:EmailAddress",), "dpv:DirectMarketing", "P7D"),
    # Research is neither allowed nor forbidden by the starter terms: the person decides.
    "person": Scenario("person", "person", ("pd:EmailAddress",), "dpv:ResearchAndDevelopment",
                       "P3D"),
    "expiry": Scenario("expiry", "agree", ("pd:EmailAddress",), "dpv:DeliveryOfGoods", "PT3S"),
}
_KEYS = {"ask", "purpose", "duration", "skip"}


def parse_expectations(data: Any, *, source: str = "the expectations") -> dict[str, Scenario]:
    """The scenarios, defaults overlaid with ``data`` (a parsed TOML or JSON document);
    :class:`ConfigError` naming the first problem, in a form the harness can act on."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a table of sections ({', '.join(DEFAULTS)})")
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{source}: unknown section [{clean_name(unknown[0])}]; the sections "
                          f"are {', '.join(DEFAULTS)}")
    out = dict(DEFAULTS)
    for name, section in data.items():
        if not isinstance(section, Mapping):
            raise ConfigError(f"{source}: [{name}] must be a table of keys")
        extra = sorted(set(section) - _KEYS)
        if extra:
            raise ConfigError(f"{source}: [{name}] has an unknown key {clean_name(extra[0])!r}; "
                              f"the keys are {', '.join(sorted(_KEYS))}")
        changes: dict[str, Any] = {}
        if "ask" in section:
            ask = section["ask"]
            if (not isinstance(ask, list) or not 1 <= len(ask) <= MAX_TARGETS
                    or not all(isinstance(t, str) and _TERM.fullmatch(t) for t in ask)):
                raise ConfigError(
                    f"{source}: [{name}] ask must list 1 to {MAX_TARGETS} categories "
                    "(pd:EmailAddress) or absolute resource URLs")
            changes["ask"] = tuple(ask)
        if "purpose" in section:
            purpose = section["purpose"]
            if not isinstance(purpose, str) or not _TERM.fullmatch(purpose):
                raise ConfigError(f"{source}: [{name}] purpose must be a DPV purpose such as "
                                  "dpv:DeliveryOfGoods, or its full IRI")
            changes["purpose"] = purpose
        if "duration" in section:
            duration = section["duration"]
            try:
                requested_duration(duration)
            except ValueError:
                raise ConfigError(f"{source}: [{name}] duration must be an xsd:duration of at "
                                  "least one second in days, hours, minutes or seconds (P7D, "
                                  "PT3S)") from None
            changes["duration"] = duration
        if "skip" in section:
            if not isinstance(section["skip"], bool):
                raise ConfigError(f"{source}: [{name}] skip must be true or false")
            changes["skip"] = section["skip"]
        out[name] = replace(out[name], **changes)
    return out


def load_expectations(path: Path | None) -> dict[str, Scenario]:
    """The scenarios from a ``.toml`` or ``.json`` file, or the defaults without one."""
    if path is None:
        return dict(DEFAULTS)
    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise ConfigError(f"the expectations file {path} cannot be read "
                          f"({exc.strerror or exc}); check the path") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"the expectations file {path} is over {MAX_FILE_BYTES} bytes; it "
                          "needs only a few lines")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"the expectations file {path} is not valid {kind} "
                          f"({clean_name(exc, 120)}); fix it or leave it out for the "
                          "defaults") from None
    return parse_expectations(data, source=f"the expectations file {path}")


def clean_name(value: object, limit: int = 60) -> str:
    """A name from the file, safe to print in one line."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text[:limit]
