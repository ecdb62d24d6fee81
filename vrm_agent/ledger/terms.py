"""The person's terms in the pod: one ODRL policy per resource under ``vrm/terms/``.

Each is typed both ``vrm:PersonalTerms`` and ``odrl:Offer`` (so ODRL tools read it without our
vocabulary), with the person as ``odrl:assigner``; a term from the starter roster names the
standard term it copies with ``vrm:rosterTerm``. A pod with no terms yet gets the roster.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rdflib import URIRef

from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.store import Ledger, Skipped, read_members
from vrm_agent.negotiation.odrl import Policy
from vrm_agent.negotiation.terms import ROSTER, TERMS_BASE
from vrm_agent.negotiation.wire import policy_from_graph, policy_graph
from vrm_agent.vocabulary import VRM

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class TermsError(VrmAgentError):
    """Terms that cannot be stored or found."""


class TermsStore:
    def __init__(self, ledger: Ledger, owner: str) -> None:
        self.ledger = ledger
        self.owner = owner
        self.container = ledger.layout.container("terms")
        self.skipped: list[Skipped] = []  # what the last all() could not read

    def url_of(self, slug: str) -> str:
        if not _SLUG.fullmatch(slug):
            raise TermsError(f"a terms name is lower-case letters, digits and '-', not {slug!r}")
        return self.container + slug

    def as_personal(self, policy: Policy, slug: str) -> Policy:
        """The policy as the person's own: its IRI in the pod, the person as assigner."""
        return replace(policy, uid=self.url_of(slug) + "#it", type="Offer", assigner=self.owner)

    async def save(self, slug: str, policy: Policy, *, roster: str | None = None,
                   create_only: bool = False) -> Policy:
        personal = self.as_personal(policy, slug)
        graph = policy_graph(personal, extra_types=[str(VRM.PersonalTerms)])
        if roster:
            graph.add((URIRef(personal.uid), VRM.rosterTerm, URIRef(roster)))
        await self.ledger.write_graph(self.url_of(slug), graph,
                                      if_none_match="*" if create_only else None)
        return personal

    async def get(self, slug: str) -> Policy:
        url = self.url_of(slug)
        try:
            return await self._read(url)
        except NotFound:
            raise TermsError(f"there are no terms named {slug!r}") from None

    async def _read(self, url: str) -> Policy:
        """The policy stored at ``url``; it must be an ODRL policy with rules."""
        graph = (await self.ledger.pod.get_graph(url)).graph
        policy = policy_from_graph(graph, url + "#it")
        if not policy.rules:
            raise TermsError("it holds no policy with rules")
        return policy

    async def slugs(self) -> list[str] | None:
        """The names of the stored terms; None when the person has never had any."""
        try:
            members = await self.ledger.pod.list_container(self.container)
        except NotFound:
            return None
        return sorted(m[len(self.container):] for m in members if m.startswith(self.container)
                      and "/" not in m[len(self.container):] and m != self.container)

    async def all(self) -> dict[str, Policy]:
        """Every stored policy by name; the starter roster is written first if there is none.
        A member that is not a policy (not RDF, no rules, a name that is no terms name) is
        skipped and reported (:attr:`skipped`), never fatal."""
        slugs = await self.slugs()
        if slugs is None:
            await self.seed()
            slugs = sorted(ROSTER)
        urls = [self.container + s for s in slugs]

        async def read(url: str) -> Policy:
            slug = url[len(self.container):]
            if not _SLUG.fullmatch(slug):
                raise TermsError(f"{slug!r} is not a terms name")
            return await self._read(url)

        good, self.skipped = await read_members(urls, read, what="terms policy",
                                                reported=self.ledger.reported)
        return {url[len(self.container):]: policy for url, policy in good}

    async def seed(self) -> None:
        # One at a time: the first write creates vrm/terms/ (and maybe vrm/), and on CSS (ACP,
        # file backend) a pod root was seen to lose its pim:Storage type after a burst of
        # first writes; a one-time cost of four round trips.
        for name in ROSTER:
            await self.add_roster(name)

    async def add_roster(self, name: str) -> Policy:
        if name not in ROSTER:
            raise TermsError(f"no roster term {name!r} (known: {', '.join(ROSTER)})")
        return await self.save(name, ROSTER[name](self.owner), roster=TERMS_BASE + name)

    async def remove(self, slug: str) -> None:
        try:
            await self.ledger.pod.delete(self.url_of(slug))
        except NotFound:
            raise TermsError(f"there are no terms named {slug!r}") from None

