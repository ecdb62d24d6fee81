"""One interface over the two access-control systems a Solid server may use.

The I/O layer discovers the access-control resource from ``Link: <...>; rel="acl"`` and its kind
from the ``rel="type"`` links of that resource, then picks :data:`WAC` or :data:`ACP` with
:func:`format_for`. It never guesses from the URL (``.acl`` or ``.acr`` is the server's choice).
A new document is written whole (PUT with If-None-Match: *); an existing one is changed by an N3
Patch of exactly the grants' triples (:meth:`AccessDocumentFormat.patch_for`), and when the
document is not as expected, by the full cycle: GET with its ETag, parse, apply the pure functions
here, serialize, PUT with If-Match, and on 412 start again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Protocol, runtime_checkable

from rdflib import Graph

from vrm_agent.access import acp, wac
from vrm_agent.access._rdf import TURTLE, parse_turtle, serialize_turtle
from vrm_agent.access.model import ForeignRule, Grant

ACP_ACCESS_CONTROL_RESOURCE = "http://www.w3.org/ns/solid/acp#AccessControlResource"

__all__ = [
    "ACP",
    "ACP_ACCESS_CONTROL_RESOURCE",
    "WAC",
    "AccessDocumentFormat",
    "format_for",
]


@runtime_checkable
class AccessDocumentFormat(Protocol):
    """What the WAC and ACP backends both offer. ``doc_url`` is the access-control document's URL
    (the ``rel="acl"`` target), ``resource_url`` the resource or container it governs."""

    name: str
    content_type: str

    def read_grants(self, graph: Graph, doc_url: str) -> list[Grant]: ...

    def damaged_grants(self, graph: Graph) -> list[str]: ...

    def foreign_rules(self, graph: Graph) -> list[ForeignRule]: ...

    def foreign_triples(self, graph: Graph) -> Graph: ...

    def apply_changes(
        self,
        graph: Graph,
        doc_url: str,
        resource_url: str,
        owner_webid: str,
        add: Sequence[Grant] = (),
        remove: Sequence[str] = (),
    ) -> Graph: ...

    def patch_for(
        self, doc_url: str, resource_url: str, add: Sequence[Grant] = (),
        remove: Sequence[Grant] = (),
    ) -> tuple[Graph | None, Graph, Graph]: ...

    def initial_document(
        self,
        doc_url: str,
        resource_url: str,
        owner_webid: str,
        inherited: Graph | None = None,
        *,
        inherited_container: str | None = None,
    ) -> Graph: ...

    def with_owner_control(
        self, graph: Graph, doc_url: str, resource_url: str, owner_webid: str
    ) -> Graph: ...

    def check_owner_keeps_control(
        self, graph: Graph, resource_url: str, owner_webid: str
    ) -> None: ...

    def with_public_read(self, graph: Graph, doc_url: str, resource_url: str) -> Graph: ...

    def without_public_read(self, graph: Graph, doc_url: str, resource_url: str) -> Graph: ...

    def serialize(self, graph: Graph, base: str) -> str: ...

    def parse(self, text: str | bytes, base: str) -> Graph: ...


@dataclass(frozen=True)
class _ModuleFormat:
    """An :class:`AccessDocumentFormat` made of one module's pure functions."""

    name: str
    module: ModuleType
    content_type: str = TURTLE

    def read_grants(self, graph: Graph, doc_url: str) -> list[Grant]:
        return self.module.read_grants(graph, doc_url)

    def damaged_grants(self, graph: Graph) -> list[str]:
        return self.module.damaged_grants(graph)

    def foreign_rules(self, graph: Graph) -> list[ForeignRule]:
        return self.module.foreign_rules(graph)

    def foreign_triples(self, graph: Graph) -> Graph:
        return self.module.foreign_triples(graph)

    def apply_changes(
        self,
        graph: Graph,
        doc_url: str,
        resource_url: str,
        owner_webid: str,
        add: Sequence[Grant] = (),
        remove: Sequence[str] = (),
    ) -> Graph:
        return self.module.apply_changes(graph, doc_url, resource_url, owner_webid, add, remove)

    def patch_for(
        self, doc_url: str, resource_url: str, add: Sequence[Grant] = (),
        remove: Sequence[Grant] = (),
    ) -> tuple[Graph | None, Graph, Graph]:
        return self.module.patch_for(doc_url, resource_url, add, remove)

    def initial_document(
        self,
        doc_url: str,
        resource_url: str,
        owner_webid: str,
        inherited: Graph | None = None,
        *,
        inherited_container: str | None = None,
    ) -> Graph:
        return self.module.initial_document(
            doc_url, resource_url, owner_webid, inherited, inherited_container=inherited_container
        )

    def with_owner_control(
        self, graph: Graph, doc_url: str, resource_url: str, owner_webid: str
    ) -> Graph:
        return self.module.with_owner_control(graph, doc_url, resource_url, owner_webid)

    def check_owner_keeps_control(
        self, graph: Graph, resource_url: str, owner_webid: str
    ) -> None:
        self.module.check_owner_keeps_control(graph, resource_url, owner_webid)

    def with_public_read(self, graph: Graph, doc_url: str, resource_url: str) -> Graph:
        return self.module.with_public_read(graph, doc_url, resource_url)

    def without_public_read(self, graph: Graph, doc_url: str, resource_url: str) -> Graph:
        return self.module.without_public_read(graph, doc_url, resource_url)

    def serialize(self, graph: Graph, base: str) -> str:
        """Turtle with absolute IRIs (no ``@base``), refusing a graph whose managed nodes belong to
        another document than ``base``."""
        return serialize_turtle(graph, base)

    def parse(self, text: str | bytes, base: str) -> Graph:
        """Turtle, resolved against ``base`` (raises ``MalformedDocument``)."""
        return parse_turtle(text, base)

    def __repr__(self) -> str:
        return f"<access document format {self.name}>"


WAC: AccessDocumentFormat = _ModuleFormat("wac", wac)
ACP: AccessDocumentFormat = _ModuleFormat("acp", acp)


def format_for(link_types: set[str]) -> AccessDocumentFormat:
    """The backend for an access-control resource, from the ``rel="type"`` links of its HEAD/GET:
    typed ``acp:AccessControlResource`` means ACP, anything else is a WAC ACL."""
    return ACP if ACP_ACCESS_CONTROL_RESOURCE in link_types else WAC
