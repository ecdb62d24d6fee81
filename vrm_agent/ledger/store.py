"""The ledger: the person's records in their pod, created, read, updated, listed and deleted.

Every write is validated against the published SHACL shapes before it leaves the agent; an
invalid record raises :class:`~vrm_agent.vocabulary.validation.ShapeViolation` naming the
offending property, and nothing is written.
"""

from __future__ import annotations

import asyncio

from rdflib import Graph

from vrm_agent.errors import NotFound, PreconditionFailed, VrmAgentError
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import R
from vrm_agent.pod.client import PodClient
from vrm_agent.vocabulary.compiled import validate_graph


class RecordExists(VrmAgentError):
    """create() found a record with the same id already in the pod."""


class RecordNotFound(VrmAgentError):
    """No record of this kind with this id in the pod."""


class Ledger:
    def __init__(self, pod: PodClient, storage: str) -> None:
        self.pod = pod
        self.layout = PodLayout(storage)

    def url_of(self, record_type: type[R], record_id: str) -> str:
        return self.layout.resource(record_type.kind, record_id)

    async def write_graph(
        self, url: str, graph: Graph, *, if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> None:
        """The one door out: validate, then PUT."""
        validate_graph(graph)
        await self.pod.put_graph(url, graph, if_match=if_match, if_none_match=if_none_match)

    async def create(self, record: R) -> str:
        url = self.url_of(type(record), record.id)
        try:
            await self.write_graph(url, record.to_graph(self.layout), if_none_match="*")
        except PreconditionFailed:
            raise RecordExists(f"{type(record).__name__.lower()} {record.id} exists") from None
        return url

    async def save(self, record: R) -> str:
        """Create or replace."""
        url = self.url_of(type(record), record.id)
        await self.write_graph(url, record.to_graph(self.layout))
        return url

    async def update(self, record: R) -> str:
        """Replace an existing record; fails if someone changed it since it was read."""
        url = self.url_of(type(record), record.id)
        try:
            current = await self.pod.head(url)
        except NotFound:
            raise RecordNotFound(f"no {type(record).__name__.lower()} {record.id}") from None
        await self.write_graph(url, record.to_graph(self.layout), if_match=current.etag)
        return url

    async def get(self, record_type: type[R], record_id: str) -> R:
        url = self.url_of(record_type, record_id)
        try:
            resource = await self.pod.get_graph(url)
        except NotFound:
            raise RecordNotFound(f"no {record_type.__name__.lower()} {record_id}") from None
        return record_type.from_graph(resource.graph, url, self.layout)  # type: ignore[return-value]

    async def ids(self, record_type: type[R]) -> set[str]:
        try:
            members = await self.pod.list_container(self.layout.container(record_type.kind))
        except NotFound:
            return set()
        return {m.rsplit("/", 1)[-1] for m in members if not m.endswith("/")}

    async def list(self, record_type: type[R]) -> list[R]:
        ids = sorted(await self.ids(record_type))
        return list(await asyncio.gather(*(self.get(record_type, i) for i in ids)))

    async def delete(self, record_type: type[R], record_id: str) -> None:
        try:
            await self.pod.delete(self.url_of(record_type, record_id))
        except NotFound:
            raise RecordNotFound(f"no {record_type.__name__.lower()} {record_id}") from None
