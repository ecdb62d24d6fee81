"""The person's terms in the pod: one ODRL policy per resource under ``vrm/terms/``.

Each is typed both ``vrm:PersonalTerms`` and ``odrl:Offer`` (so ODRL tools read it without our
vocabulary), with the person as ``odrl:assigner``; a term from the starter roster names the
standard term it copies with ``vrm:rosterTerm``. A pod with no terms yet gets the roster.

Terms are read with the evaluator's reader (``vrm_agent.policy``) and checked on every read:
terms that no longer validate (edited by hand, written by an older version) are kept in
:attr:`TermsStore.invalid` with their problems, for ``vrm-agent terms`` to show and for the
daemon to send what they touch to the person.
"""

from __future__ import annotations

import re

from rdflib import RDF, Graph, Namespace, URIRef
from rdflib.term import Node

from vrm_agent.errors import NotFound, VrmAgentError
from vrm_agent.ledger.store import Ledger, Skipped, read_members
from vrm_agent.negotiation import odrl as wire_model
from vrm_agent.negotiation.terms import ROSTER, TERMS_BASE
from vrm_agent.negotiation.wire import policy_graph
from vrm_agent.policy.model import Policy
from vrm_agent.policy.rdf import POLICY_CLASSES, policy_nodes, read_policy
from vrm_agent.policy.validate import check
from vrm_agent.vocabulary import VRM

ODRL_NS = Namespace("http://www.w3.org/ns/odrl/2/")

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def terms_rows(terms: dict[str, Policy], invalid: dict[str, list[str]]
               ) -> list[dict[str, object]]:
    """Each stored term in short: its name, title, rules in plain words and whether it
    validates (``vrm-agent terms`` and the dashboard)."""
    from vrm_agent.policy.explain import policy_text

    return [{"name": slug, "title": p.title, "valid": slug not in invalid,
             "rules": policy_text(p), "problems": invalid.get(slug, [])}
            for slug, p in terms.items()]


def roster_rows(terms: dict[str, Policy], invalid: dict[str, list[str]]
                ) -> list[dict[str, object]]:
    """The starter roster, each term switched on (stored) or off, with what it means for
    vendors; the rules are the stored ones when on, the roster's own when off."""
    from vrm_agent.negotiation.terms import FOR_VENDORS
    from vrm_agent.policy.explain import policy_text

    stored = {r["name"]: r for r in terms_rows(terms, invalid)}
    rows: list[dict[str, object]] = []
    for name, make in ROSTER.items():
        if name in stored:
            rows.append({**stored[name], "on": True, "for_vendors": FOR_VENDORS[name]})
            continue
        policy = read_policy(policy_graph(make("urn:x-person")), URIRef(TERMS_BASE + name))
        rows.append({"name": name, "title": policy.title, "valid": True,
                     "rules": policy_text(policy), "problems": [], "on": False,
                     "for_vendors": FOR_VENDORS[name]})
    return rows


class TermsError(VrmAgentError):
    """Terms that cannot be stored or found."""


class TermsStore:
    def __init__(self, ledger: Ledger, owner: str) -> None:
        self.ledger = ledger
        self.owner = owner
        self.container = ledger.layout.container("terms")
        self.skipped: list[Skipped] = []  # what the last all() could not read
        # name -> problems, from the last all(): terms that do not validate or cannot be read
        self.invalid: dict[str, list[str]] = {}

    def url_of(self, slug: str) -> str:
        if not _SLUG.fullmatch(slug):
            raise TermsError(f"a terms name is lower-case letters, digits and '-', not {slug!r}")
        return self.container + slug

    def as_personal(self, graph: Graph, slug: str, node: Node | None = None) -> Graph:
        """The policy in ``graph`` as the person's own: its IRI in the pod, typed
        vrm:PersonalTerms and odrl:Offer, with the person as the one assigner."""
        nodes = [node] if node is not None else policy_nodes(graph)
        if len(nodes) != 1:
            raise TermsError(f"a terms document holds one ODRL policy, not {len(nodes)}")
        old, new = nodes[0], URIRef(self.url_of(slug) + "#it")
        out = Graph()
        for s, p, o in graph:
            out.add((new if s == old else s, p, new if o == old else o))
        for name in POLICY_CLASSES:
            out.remove((new, RDF.type, ODRL_NS[name]))
        out.add((new, RDF.type, ODRL_NS.Offer))
        out.add((new, RDF.type, VRM.PersonalTerms))
        out.set((new, ODRL_NS.uid, new))
        out.set((new, ODRL_NS.assigner, URIRef(self.owner)))
        if (new, ODRL_NS.conflict, None) not in out:
            out.add((new, ODRL_NS.conflict, ODRL_NS.invalid))
        return out

    async def save(self, slug: str, graph: Graph, *, roster: str | None = None,
                   create_only: bool = False) -> Policy:
        """Store a policy graph as terms ``slug``; it must validate first."""
        personal = self.as_personal(graph, slug)
        uid = self.url_of(slug) + "#it"
        policy = read_policy(personal, URIRef(uid))
        findings = check(policy)
        if findings.problems:
            raise TermsError("; ".join(findings.problems))
        if roster:
            personal.add((URIRef(uid), VRM.rosterTerm, URIRef(roster)))
        await self.ledger.write_graph(self.url_of(slug), personal,
                                      if_none_match="*" if create_only else None)
        return policy

    async def graph_of(self, slug: str) -> Graph:
        url = self.url_of(slug)
        try:
            return (await self.ledger.pod.get_graph(url)).graph
        except NotFound:
            raise TermsError(f"there are no terms named {slug!r}") from None

    async def get(self, slug: str) -> Policy:
        url = self.url_of(slug)
        try:
            return await self._read(url)
        except NotFound:
            raise TermsError(f"there are no terms named {slug!r}") from None

    async def _read(self, url: str) -> Policy:
        """The policy stored at ``url``; it must be an ODRL policy with rules."""
        graph = (await self.ledger.pod.get_graph(url)).graph
        policy = read_policy(graph, URIRef(url + "#it"))
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
        found = {url[len(self.container):]: policy for url, policy in good}
        self.invalid = {name: problems for name, policy in found.items()
                        if (problems := check(policy).problems)}
        # A member that could not be read at all may have held prohibitions: it counts as
        # terms that do not validate, so what it might forbid goes to the person.
        for skipped in self.skipped:
            name = skipped.url[len(self.container):] if skipped.url.startswith(
                self.container) else skipped.url
            self.invalid.setdefault(name, [f"it cannot be read: {skipped.reason}"])
        return found

    async def seed(self) -> None:
        # One at a time: the first write creates vrm/terms/ (and maybe vrm/), and on CSS (ACP,
        # file backend) a pod root was seen to lose its pim:Storage type after a burst of
        # first writes; a one-time cost of four round trips.
        for name in ROSTER:
            await self.add_roster(name)

    async def add_roster(self, name: str) -> Policy:
        if name not in ROSTER:
            raise TermsError(f"no roster term {name!r} (known: {', '.join(ROSTER)})")
        policy: wire_model.Policy = ROSTER[name](self.owner)
        graph = policy_graph(policy)
        graph.set((URIRef(policy.uid), ODRL_NS.conflict, ODRL_NS[policy.conflict]))
        return await self.save(name, graph, roster=TERMS_BASE + name)

    async def remove(self, slug: str) -> None:
        try:
            await self.ledger.pod.delete(self.url_of(slug))
        except NotFound:
            raise TermsError(f"there are no terms named {slug!r}") from None

