"""Parsing of HTTP ``Link`` headers (RFC 8288), the way Solid servers announce related resources:
the access-control resource (``rel="acl"``), the resource's types (``rel="type"``), its description
(``rel="describedby"``) and the storage description."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

PIM_STORAGE = "http://www.w3.org/ns/pim/space#Storage"
LDP_CONTAINER = "http://www.w3.org/ns/ldp#Container"
LDP_BASIC_CONTAINER = "http://www.w3.org/ns/ldp#BasicContainer"
STORAGE_DESCRIPTION_REL = "http://www.w3.org/ns/solid/terms#storageDescription"

# One link-value: <target> followed by ;-separated parameters. Parameter values may be quoted
# strings containing commas and semicolons, which is why a plain split(",") is wrong.
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_LINK_VALUE = re.compile(
    r"\s*<([^>]*)>((?:\s*;\s*[^;,\"=\s]+(?:\s*=\s*(?:" + _QUOTED + r"|[^;,\s]*))?)*)"
)
_PARAM = re.compile(r";\s*([^;,\"=\s]+)(?:\s*=\s*(\"(?:[^\"\\]|\\.)*\"|[^;,\s]*))?")


@dataclass(frozen=True)
class Link:
    target: str
    rel: str
    params: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


class Links:
    """All links of one response, with targets resolved against the response URL."""

    def __init__(self, links: Iterable[Link] = ()) -> None:
        self._links = list(links)

    @classmethod
    def parse(cls, headers: Iterable[str], base_url: str) -> Links:
        links: list[Link] = []
        for header in headers:
            for match in _LINK_VALUE.finditer(header):
                target = urljoin(base_url, match.group(1))
                params: dict[str, str] = {}
                for name, value in _PARAM.findall(match.group(2)):
                    if value.startswith('"'):
                        value = re.sub(r"\\(.)", r"\1", value[1:-1])
                    params[name.lower()] = value
                # rel may hold several space-separated relation types: one Link per type.
                for rel in params.get("rel", "").split():
                    links.append(Link(target, rel, params))
        return cls(links)

    def all(self, rel: str) -> list[str]:
        return [link.target for link in self._links if link.rel == rel]

    def first(self, rel: str) -> str | None:
        found = self.all(rel)
        return found[0] if found else None

    @property
    def acl(self) -> str | None:
        """The access-control resource (a WAC .acl or an ACP .acr)."""
        return self.first("acl")

    @property
    def types(self) -> set[str]:
        return set(self.all("type"))

    @property
    def is_storage(self) -> bool:
        return PIM_STORAGE in self.types

    @property
    def storage_description(self) -> str | None:
        return self.first(STORAGE_DESCRIPTION_REL)

    def __iter__(self) -> Iterator[Link]:
        return iter(self._links)

    def __len__(self) -> int:
        return len(self._links)

    def __repr__(self) -> str:
        return f"Links({self._links!r})"
