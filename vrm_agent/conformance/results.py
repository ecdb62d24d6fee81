"""Checks as plain data, their results, and the two ways results leave the kit: a table for
people and JUnit XML for CI. Everything here is pure; the checks' I/O lives with the checks."""

from __future__ import annotations

import enum
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

ContextT = TypeVar("ContextT")

# Text from the implementation under test ends up in terminals and XML: keep it printable and
# short, so a hostile answer can neither repaint the screen nor bloat the report.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e"
                          "\u2066-\u2069]")
MAX_DETAIL = 400


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


class Failed(Exception):
    """Raised by a check: the implementation did something the protocol does not allow."""


class Skipped(Exception):
    """Raised by a check that cannot judge: what it needs is missing, or the implementation
    answered differently in a way the protocol allows (the reason says which)."""


@dataclass(frozen=True)
class Check(Generic[ContextT]):
    """One conformance check: ``run`` returns what it saw when the check passes, raises
    :class:`Failed` or :class:`Skipped` otherwise."""

    id: str
    section: str  # of docs/protocol.md
    description: str
    run: Callable[[ContextT], Awaitable[str]]


@dataclass(frozen=True)
class Result:
    id: str
    section: str
    description: str
    outcome: Outcome
    detail: str
    seconds: float = 0.0


def clean(text: object, limit: int = MAX_DETAIL) -> str:
    """``text`` on one line, without control characters, at most ``limit`` characters."""
    flat = " ".join(_UNPRINTABLE.sub("?", str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failed(results: Sequence[Result]) -> bool:
    return any(r.outcome is Outcome.FAIL for r in results)


def counts(results: Sequence[Result]) -> dict[Outcome, int]:
    return {o: sum(1 for r in results if r.outcome is o) for o in Outcome}


def summary_line(results: Sequence[Result]) -> str:
    found = counts(results)
    return (f"{found[Outcome.PASS]} passed, {found[Outcome.FAIL]} failed, "
            f"{found[Outcome.SKIP]} skipped")


def plain_table(results: Sequence[Result]) -> str:
    """The results as aligned text, one check a line."""
    rows = [("RESULT", "CHECK", "§", "WHAT", "DETAIL")] + [
        (r.outcome.value.upper(), r.id, r.section, clean(r.description, 70), clean(r.detail))
        for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True))
             + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n" + summary_line(results)


def print_table(results: Sequence[Result], *, title: str) -> None:
    """The table with ``rich`` where it is installed, plain aligned text otherwise."""
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        print(title)
        print(plain_table(results))
        return
    style = {Outcome.PASS: "green", Outcome.FAIL: "bold red", Outcome.SKIP: "yellow"}
    table = Table(title=title, show_lines=False)
    for column in ("result", "check", "§", "what", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:  # Text(...) so markup in the implementation's words is not obeyed
        table.add_row(Text(r.outcome.value.upper(), style=style[r.outcome]), Text(r.id),
                      Text(r.section), Text(clean(r.description, 70)), Text(clean(r.detail)))
    console = Console()
    console.print(table)
    console.print(summary_line(results))


def junit_xml(results: Sequence[Result], *, suite: str, target: str) -> bytes:
    """JUnit XML as CI tools read it: one ``testsuite`` in ``testsuites``, one ``testcase`` per
    check (``classname`` the protocol section), ``failure`` or ``skipped`` with the reason."""
    found = counts(results)
    total_time = f"{sum(r.seconds for r in results):.3f}"
    root = ET.Element("testsuites", name=f"vrm-agent conformance: {suite}",
                      tests=str(len(results)), failures=str(found[Outcome.FAIL]),
                      errors="0", skipped=str(found[Outcome.SKIP]), time=total_time)
    element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(results)),
                            failures=str(found[Outcome.FAIL]), errors="0",
                            skipped=str(found[Outcome.SKIP]), time=total_time)
    properties = ET.SubElement(element, "properties")
    ET.SubElement(properties, "property", name="target", value=clean(target, 2048))
    for r in results:
        case = ET.SubElement(element, "testcase", name=f"{r.id}: {clean(r.description, 200)}",
                             classname=f"protocol.section-{r.section}", time=f"{r.seconds:.3f}")
        if r.outcome is Outcome.FAIL:
            ET.SubElement(case, "failure", message=clean(r.detail), type="nonconformance"
                          ).text = clean(r.detail, 4000)
        elif r.outcome is Outcome.SKIP:
            ET.SubElement(case, "skipped", message=clean(r.detail))
        else:
            ET.SubElement(case, "system-out").text = clean(r.detail, 4000)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
