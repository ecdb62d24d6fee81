"""What the command line shows cannot be turned against the person's terminal: text vendors
wrote (reasons, considerations) is shown with its control characters escaped, not obeyed."""

from __future__ import annotations

import pytest

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
