"""What the command line shows cannot be turned against the person's terminal: text vendors
wrote (reasons, considerations) is shown with its control characters escaped, not obeyed."""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from vrm_agent.cli import output
from vrm_agent.cli.output import printable, show, show_table


@pytest.mark.parametrize("hostile", [
    "\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x9b31m", "line\rover", "a\nb", "\x00",
    "right\u202eto-left", "\u2066isolate\u2069", "\u200f",
])
def test_control_characters_are_escaped(hostile: str, capsys: pytest.CaptureFixture[str]) -> None:
    show_table([{"reason": f"free delivery {hostile}"}], ("reason",), as_json=False)
    show({"consideration": hostile}, as_json=False)
    out = capsys.readouterr().out
    controls = {c for c in hostile if not c.isprintable()}
    assert not any(c in out for c in controls - {"\n"}), repr(out)
    assert out.count("\n") == 3  # header, row, one line for show; no line a vendor added
    assert "\\u" in printable(hostile)


def test_ordinary_text_is_untouched() -> None:
    text = "Bäckerei Müller: 10 % off, 配送 ✓"
    assert printable(text) == text


# -- tables people read ------------------------------------------------------------------------

def display_width(text: str) -> int:
    """Cells a terminal gives the text: wide East Asian characters and most emoji two,
    combining marks none."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def column_starts(line: str, values: list[str]) -> list[int]:
    starts, position = [], 0
    for value in values:
        index = line.index(value, position)
        starts.append(display_width(line[:index]))
        position = index + len(value)
    return starts


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_columns_line_up_in_any_script(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], terminal: bool
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    monkeypatch.setattr(output.shutil, "get_terminal_size", lambda: os.terminal_size((120, 20)))
    monkeypatch.setenv("NO_COLOR", "1")
    rows = [
        {"name": "Bäckerei Müller", "city": "Köln", "state": "customer"},
        {"name": "東京書店", "city": "東京", "state": "member"},
        {"name": "Café 😀☕", "city": "Paris", "state": "prospect"},
        {"name": "e\u0301cole\u0301", "city": "Lyon", "state": "former"},  # combining accents
    ]
    show_table(rows, ("name", "city", "state"), as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(rows)
    starts = {tuple(column_starts(line, [r["name"], r["city"], r["state"]]))
              for line, r in zip(lines[1:], rows, strict=True)}
    starts.add(tuple(column_starts(lines[0], ["NAME", "CITY", "STATE"])))
    assert len(starts) == 1, lines


@pytest.mark.parametrize("rows", [1, output.RICH_ROWS + 1])
def test_long_values_stay_whole_into_a_pipe_or_a_long_listing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rows: int
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: rows > 1)  # a long one on a terminal
    monkeypatch.setattr(output.shutil, "get_terminal_size", lambda: os.terminal_size((50, 20)))
    url = "https://pod.example/alice/vrm/purchases/" + "x" * 300
    show_table([{"id": "g1", "resources": [url, url + "2"]}] * rows, ("id", "resources"),
               as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 2 * rows
    assert lines[1].split() == ["g1", url] and lines[2].strip() == url + "2"


def test_long_values_wrap_within_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setattr(output.shutil, "get_terminal_size", lambda: os.terminal_size((50, 20)))
    monkeypatch.setenv("NO_COLOR", "1")
    url = "https://pod.example/alice/vrm/purchases/" + "x" * 120
    until = "2030-01-01T00:00:00+00:00"
    show_table([{"id": "g1", "until": until, "resource": url}], ("id", "until", "resource"),
               as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert all(display_width(line) <= 50 for line in lines), lines
    assert lines[1].split()[:2] == ["g1", until]  # a time keeps its line
    start = lines[1].index("https://")
    assert "".join(line[start:] for line in lines[1:]) == url  # folded whole, nothing cut


@pytest.mark.parametrize(("terminal", "no_color", "coloured"), [
    (True, False, True), (True, True, False), (False, False, False),
], ids=["terminal", "NO_COLOR", "pipe"])
def test_colour_only_on_a_terminal_without_no_color(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    terminal: bool, no_color: bool, coloured: bool,
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "")  # set at all is enough (no-color.org)
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    show_table([{"id": "a"}], ("id",), as_json=False)
    show({"id": "a"}, as_json=False)
    assert ("\x1b[" in capsys.readouterr().out) is coloured


def test_vendor_text_is_not_markup(capsys: pytest.CaptureFixture[str]) -> None:
    show_table([{"offer": "[bold red]free[/] :smile:"}], ("offer",), as_json=False)
    show({"offer": "[link=https://evil.example]click[/link]"}, as_json=False)
    out = capsys.readouterr().out
    assert "[bold red]free[/] :smile:" in out
    assert "[link=https://evil.example]click[/link]" in out


def test_json_keeps_its_types(capsys: pytest.CaptureFixture[str]) -> None:
    show({"resources": ("b", "a"), "modes": {"Read", "Append"}, "count": 3, "total":
          Decimal("25.00"), "when": datetime(2025, 1, 2, 3, 4, tzinfo=UTC),
          "day": date(2025, 1, 2), "absent": None, "ok": True}, as_json=True)
    assert json.loads(capsys.readouterr().out) == {
        "resources": ["b", "a"], "modes": ["Append", "Read"], "count": 3, "total": "25.00",
        "when": "2025-01-02T03:04:00+00:00", "day": "2025-01-02", "absent": None, "ok": True}


def test_absent_values_and_lists_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    show({"webid": None, "resources": ["https://a.example/", "https://b.example/"]},
         as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        "webid:     -", "resources: https://a.example/", "           https://b.example/"]


def test_a_command_shows_no_delivery_retries_unless_debugging(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A command prints one line on whether each vendor was told; the notifier's attempts
    belong in the daemon's log (and on stderr only with VRM_AGENT_DEBUG=1)."""
    import logging

    from vrm_agent.cli import main as cli_main

    notify = logging.getLogger("vrm_agent.daemon.notify")
    saved = notify.handlers[:], notify.propagate
    try:
        notify.handlers.clear()
        monkeypatch.delenv("VRM_AGENT_DEBUG", raising=False)
        cli_main._quiet_retries()
        notify.warning("notification not delivered")
        assert capsys.readouterr().err == ""
    finally:
        notify.handlers[:], notify.propagate = saved
    try:
        cli_main._quiet_retries()  # as if a command had run before in this process
        monkeypatch.setenv("VRM_AGENT_DEBUG", "1")
        cli_main._quiet_retries()
        assert notify.propagate and not notify.handlers  # the attempts reach stderr
    finally:
        notify.handlers[:], notify.propagate = saved
