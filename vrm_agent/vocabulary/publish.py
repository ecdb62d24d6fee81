"""Copying the vocabulary into the person's own pod, where anyone may read it."""

from __future__ import annotations

from rdflib.compare import isomorphic

from vrm_agent.access.service import AccessControl
from vrm_agent.errors import NotFound
from vrm_agent.pod.client import PodClient
from vrm_agent.vocabulary import SHAPES_PATH, VOCABULARY_PATH, shapes_graph, vocabulary_graph

PUBLIC_PATH = "public/vocab/"


async def publish_vocabulary(pod: PodClient, access: AccessControl, storage: str) -> list[str]:
    """Put the vocabulary and its shapes under ``<storage>public/vocab/`` with public read;
    rewrites them only when they changed. Returns their URLs."""
    published = []
    for name, path, graph in (("vrm", VOCABULARY_PATH, vocabulary_graph()),
                              ("vrm.shapes", SHAPES_PATH, shapes_graph())):
        url = f"{storage}{PUBLIC_PATH}{name}"
        try:
            current = await pod.get_graph(url)
            changed = not isomorphic(current.graph, graph)
        except NotFound:
            changed = True
        if changed:
            await pod.put(url, path.read_bytes(), content_type="text/turtle")
        await access.publish(url)
        published.append(url)
    return published
