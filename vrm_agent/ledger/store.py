"""The ledger: the person's records in their pod, created, read, updated, listed and deleted.

Every write is validated against the published SHACL shapes before it leaves the agent; an
invalid record raises :class:`~vrm_agent.vocabulary.validation.ShapeViolation` naming the
offending property, and nothing is written.

Every read is validated too. Anyone with write access to the pod may put something in the
agent's containers, so listing a container never fails because of one member: a member that is
not RDF, not a record of the kind, or gone by the time it is read is skipped and reported (a
warning in the log: a JSON line from the daemon, one line on stderr from a command). Only a pod
that cannot answer (unreachable, refusing the agent's login, 5xx) is an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from rdflib import Graph

from vrm_agent.errors import (
    AuthenticationError,
    NotFound,
    PodError,
    PodUnreachable,
    PreconditionFailed,
    RdfSyntaxError,
    Unauthorized,
    VrmAgentError,
)
from vrm_agent.ledger.layout import PodLayout
from vrm_agent.ledger.records import R
from vrm_agent.pod.client import PodClient
from vrm_agent.vocabulary.compiled import validate_graph

log = logging.getLogger("vrm_agent.ledger")
T = TypeVar("T")


@dataclass(frozen=True)
class Skipped:
    """A container member that was not read: where, and why (one line)."""

    url: str
    reason: str


def broken_member(exc: BaseException, *, listed: bool = False) -> bool:
    """Whether reading a member failed because of the member (foreign, broken, vanished,
    unreadable to the agent) rather than because the pod cannot answer.

    ``listed``: the container was just listed with the same credentials, so a 401 is about the
    member. CSS 7 answers 501 when asked for RDF of a resource that is not RDF (JSON, text).
    """
    if isinstance(exc, Unauthorized) and listed:
        return True
    if isinstance(exc, PodUnreachable | Unauthorized | AuthenticationError):
        return False
    if isinstance(exc, RdfSyntaxError):
        return True
    if isinstance(exc, PodError):
        return exc.status is not None and (400 <= exc.status < 500 or exc.status == 501)
    # ArithmeticError: decimal.InvalidOperation, a number that is not one ("lots" as a price).
    return isinstance(exc, VrmAgentError | ValueError | TypeError | KeyError | AttributeError
                      | IndexError | RecursionError | ArithmeticError)


async def read_members(
    urls: Sequence[str], read: Callable[[str], Awaitable[T]], *, what: str,
    reported: set[str] | None = None,
) -> tuple[list[tuple[str, T]], list[Skipped]]:
    """Read each member of a container just listed; those that fail because of themselves
    are skipped, logged (once per
    URL when ``reported`` remembers them) and returned beside the good ones. Any other
    failure (the pod) is raised."""
    results = await asyncio.gather(*(read(u) for u in urls), return_exceptions=True)
    good: list[tuple[str, T]] = []
    skipped: list[Skipped] = []
    for url, result in zip(urls, results, strict=True):
        if not isinstance(result, BaseException):
            good.append((url, result))
        elif broken_member(result, listed=True):
            reason = ("not RDF (the pod refuses to serve it as RDF)"
                      if isinstance(result, Unauthorized) else
                      str(result).splitlines()[0][:200] if str(result) else
                      type(result).__name__)
            skipped.append(Skipped(url, reason))
            if reported is not None:
                if url in reported:
                    continue
                reported.add(url)
            log.warning(f"warning: skipped {url}: not a valid {what} ({reason})",
                        extra={"resource": url, "problem": reason})
        else:
            raise result
    return good, skipped


class RecordExists(VrmAgentError):
    """create() found a record with the same id already in the pod."""


class RecordNotFound(VrmAgentError):
    """No record of this kind with this id in the pod."""


class RecordBusy(VrmAgentError):
    """change() found the record changed by someone else at every try."""


CHANGE_ATTEMPTS = 5  # reads and conditional writes change() tries before it gives up


class Ledger:
    def __init__(self, pod: PodClient, storage: str) -> None:
        self.pod = pod
        self.layout = PodLayout(storage)
        self.skipped: dict[str, list[Skipped]] = {}  # by kind: what the last list() skipped
        self.reported: set[str] = set()  # skipped members already logged

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

    async def change(self, record_type: type[R], record_id: str,
                     edit: Callable[[R | None], R]) -> R:
        """Read one record (None when there is none), ``edit`` it, and write the result only if
        the record is still as read (If-Match its ETag, or If-None-Match when new); when someone
        wrote it meanwhile, read and edit again. No change made elsewhere between the read and
        the write is lost, such as the person turning a signal off while a vendor reports its
        state. ``edit`` is pure and may run more than once."""
        url = self.url_of(record_type, record_id)
        for _ in range(CHANGE_ATTEMPTS):
            try:
                resource = await self.pod.get_graph(url)
            except NotFound:
                current, etag = None, None
            else:
                current = record_type.from_graph(resource.graph, url, self.layout)
                etag = resource.etag
                if etag is None:  # without a validator no write can be conditional
                    raise PodError(f"the pod gave no ETag for {url}; it cannot be changed "
                                   "safely", method="GET", url=url)
            record = edit(current)  # type: ignore[arg-type]
            try:
                await self.write_graph(url, record.to_graph(self.layout), if_match=etag,
                                       if_none_match=None if current is not None else "*")
            except PreconditionFailed:
                continue
            return record
        raise RecordBusy(f"your {record_type.__name__.lower()} {record_id} kept being changed "
                         "by someone else while this change was made; nothing was written, try "
                         "again")

    async def get(self, record_type: type[R], record_id: str) -> R:
        url = self.url_of(record_type, record_id)
        try:
            resource = await self.pod.get_graph(url)
        except NotFound:
            raise RecordNotFound(f"no {record_type.__name__.lower()} {record_id}") from None
        return record_type.from_graph(resource.graph, url, self.layout)  # type: ignore[return-value]

    async def ids(self, record_type: type[R]) -> set[str]:
        container = self.layout.container(record_type.kind)
        try:
            members = await self.pod.list_container(container)
        except NotFound:
            return set()
        # Direct children only: a listing names nothing else, and nothing else is ours.
        return {m[len(container):] for m in members if m.startswith(container)
                and "/" not in m[len(container):] and m != container}

    async def list(self, record_type: type[R]) -> list[R]:
        """Every record of the kind; members that are not one are skipped (:attr:`skipped`)."""
        urls = [self.url_of(record_type, i) for i in sorted(await self.ids(record_type))]

        async def read(url: str) -> R:
            return await self.get(record_type, url.rsplit("/", 1)[-1])

        good, skipped = await read_members(urls, read, what=record_type.__name__.lower(),
                                           reported=self.reported)
        self.skipped[record_type.kind] = skipped
        return [record for _, record in good]

    async def delete(self, record_type: type[R], record_id: str) -> None:
        try:
            await self.pod.delete(self.url_of(record_type, record_id))
        except NotFound:
            raise RecordNotFound(f"no {record_type.__name__.lower()} {record_id}") from None
