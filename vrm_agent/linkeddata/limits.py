"""How much one JSON document from outside may cost, checked before the work is done.

Python's json module recurses once per nesting level and raises RecursionError on deep input, so
the nesting depth is measured on the text first (strings blanked out), then the document is parsed
with non-finite numbers refused, then its size in nodes and its strings are checked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from vrm_agent.errors import VrmAgentError


class InputRefused(VrmAgentError):
    """A document that is refused before any work on it; the text says why, without echoing it."""


class TooComplex(InputRefused):
    """A document within the byte limit whose processing would cost too much."""


@dataclass(frozen=True)
class Bounds:
    max_bytes: int
    max_depth: int
    max_nodes: int  # JSON objects and arrays together
    max_array: int  # items in one array (pyld merges values with a quadratic duplicate check)
    max_blank_nodes: int  # after conversion to RDF, before canonicalisation
    max_quads: int
    # Blank nodes linked to one blank node that canonicalisation cannot tell apart by their own
    # statements: it must try their permutations (seven mutually linked ones took 40 s).
    max_alike_neighbours: int = 4


MESSAGE = Bounds(max_bytes=64 * 1024, max_depth=32, max_nodes=512, max_array=256,
                 max_blank_nodes=256, max_quads=4_000)
"""A negotiation message, notification or signed agreement: what a vendor sends. pyld's RDF
conversion checks every value added to a node against those it has, so its cost grows with the
square of the values one node collects: 512 objects keep canonicalisation well under a second."""

DOCUMENT = Bounds(max_bytes=1024 * 1024, max_depth=64, max_nodes=100_000, max_array=50_000,
                  max_blank_nodes=50_000, max_quads=200_000)
"""A JSON-LD document read from a pod or a profile: converted in linear time (expansion, then
rdflib on the context-free expanded form), so it may be larger. Pods answer in Turtle; JSON-LD
comes from other servers, such as a vendor's WebID host."""

CANONICALISATION_SECONDS = 3.0
"""Wall-clock budget for canonicalising one document off the event loop (a genuine agreement
takes milliseconds; seven mutually linked blank nodes take about 40 s)."""

# A whole string, a bracket, or a quote that opens a string never closed (the rest is not JSON).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"|[\[\]{}]|"', re.DOTALL)


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects, in one linear pass without recursion.

    Stops at a string that never closes: a parser fails there, so nothing after it is nested."""
    depth = deepest = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
        elif token == '"':
            break
    return deepest


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number is too large")
    return value


def decode_text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefused("the body is not UTF-8") from exc


def load_json(raw: bytes | str, bounds: Bounds = MESSAGE) -> Any:
    """Parse JSON from outside within bounds; InputRefused says which bound or rule failed."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > bounds.max_bytes:
        raise InputRefused(f"the body is larger than {bounds.max_bytes} bytes")
    text = decode_text(raw)
    if nesting_depth(text) > bounds.max_depth:
        raise InputRefused(f"the JSON is nested deeper than {bounds.max_depth} levels")
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except RecursionError as exc:  # only if the depth measure was fooled; never a 500
        raise InputRefused("the JSON is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, int digits limit, refused constants
        raise InputRefused(f"the body is not JSON: {_reason(exc)}") from exc
    check_tree(data, bounds)
    return data


def _reason(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    text = str(error).splitlines()[0] if str(error) else "unreadable"
    return "a number is too large" if "digits" in text or "integer" in text else text[:120]


def check_tree(data: Any, bounds: Bounds) -> None:
    """Count nodes and check every string is valid Unicode (no lone surrogates), iteratively."""
    pending = [(data, 1)]
    nodes = 0
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _valid_text(value)
        elif isinstance(value, dict | list):
            nodes += 1
            if nodes > bounds.max_nodes:
                raise TooComplex(f"the JSON has more than {bounds.max_nodes} objects and arrays")
            if depth > bounds.max_depth:
                raise InputRefused(f"the JSON is nested deeper than {bounds.max_depth} levels")
            if isinstance(value, list) and len(value) > bounds.max_array:
                raise TooComplex(f"a JSON array has more than {bounds.max_array} items")
            if isinstance(value, dict):
                for key, item in value.items():
                    _valid_text(key)
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in value)


def _valid_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputRefused("a string holds a lone surrogate (not valid Unicode)") from exc
