"""The JSON-LD contexts the package ships, and the one document loader: bundled contexts only.

pyld asks its document loader for every context a document names (``"@context": "…"``,
``@import``, a relative reference resolved against ``@base``). :func:`load_document` answers from
the contexts the package ships and refuses every other URL (http, https, file:, relative, empty)
before anything is opened, so a document from outside can never make the agent fetch a remote
document or read a local file.

Nothing here imports pyld: the daemon serves the contexts from the start, but needs pyld (and the
requests and lxml it brings) only once a message arrives. :mod:`vrm_agent.linkeddata.loader`
makes this loader pyld's default.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vrm_agent.linkeddata.limits import InputRefused

PACKAGE = Path(__file__).resolve().parent.parent
PROTOCOL_CONTEXT = "https://w3id.org/vrm-agent/protocol/v1"
ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v2"


# The W3C document as published (w3c/vc-data-integrity, contexts/data-integrity/v2), byte for
# byte: vendors canonicalize signed agreements with it, and some check the bytes they are given
# against the digest W3C publishes. The agent serves these exact bytes.
DATA_INTEGRITY_SHA256 = "67f21e6e33a6c14e5ccfd2fc7865f7474fb71a04af7e94136cb399dfac8ae8f4"
DATA_INTEGRITY_PATH = PACKAGE / "integrity" / "contexts" / "data-integrity-v2.jsonld"


def data_integrity_bytes() -> bytes:
    """The pinned W3C Data Integrity v2 context, exactly as published."""
    return DATA_INTEGRITY_PATH.read_bytes()


def _bundled_file(*parts: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(PACKAGE.joinpath(*parts).read_text(encoding="utf-8"))
    return document


_PROTOCOL = _bundled_file("negotiation", "contexts", "protocol-v1.jsonld")
_BUNDLED: dict[str, dict[str, Any]] = {
    PROTOCOL_CONTEXT: _PROTOCOL,
    # The protocol context defines every ODRL term the protocol uses with ODRL's own IRIs, so a
    # message written against the ODRL context reads the same through it.
    ODRL_CONTEXT: _PROTOCOL,
    DATA_INTEGRITY_CONTEXT: _bundled_file("integrity", "contexts", "data-integrity-v2.jsonld"),
}
BUILT_IN = frozenset(_BUNDLED)


class ContextRefused(InputRefused):
    """A document named a context the package does not ship; nothing was loaded."""


def register_context(url: str, document: Mapping[str, Any]) -> None:
    """Make another context the package ships loadable by its URL."""
    _BUNDLED[url] = copy.deepcopy(dict(document))


def is_bundled(url: str) -> bool:
    return url in _BUNDLED


def bundled_context(url: str) -> dict[str, Any]:
    """A copy of a bundled context document, by its URL (ContextRefused for any other)."""
    if url not in _BUNDLED:
        raise ContextRefused(refusal_text(url))
    return copy.deepcopy(_BUNDLED[url])


def registered_extras() -> dict[str, dict[str, Any]]:
    """Contexts registered at run time beyond the built-in ones (a worker process needs them)."""
    return {url: doc for url, doc in _BUNDLED.items() if url not in BUILT_IN}


def refusal_text(url: object) -> str:
    shown = url if isinstance(url, str) else type(url).__name__
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return (f"the JSON-LD context {shown!r} is not one the agent knows; contexts are never "
            f"fetched (use {PROTOCOL_CONTEXT} or {DATA_INTEGRITY_CONTEXT})")


def load_document(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """pyld's document loader interface: the bundled context, or ContextRefused."""
    if not isinstance(url, str) or url not in _BUNDLED:
        raise ContextRefused(refusal_text(url))
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(_BUNDLED[url])}


def refusal_in(error: BaseException) -> ContextRefused | None:
    """pyld wraps a loader's exception in layers (``cause``, ``details``, ``__cause__``)."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ContextRefused):
            return current
        pending += [getattr(current, "cause", None), current.__cause__, current.__context__]
        details = getattr(current, "details", None)
        if isinstance(details, dict):
            pending += list(details.values())
    return None
