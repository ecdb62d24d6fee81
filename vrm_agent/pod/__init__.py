"""The Solid pod client: Solid-OIDC with DPoP, resources, RDF, containers, typed errors."""

from vrm_agent.pod.auth import ClientCredentials, DpopKey
from vrm_agent.pod.client import GraphResource, PodClient, PodResponse, with_retry_on_conflict
from vrm_agent.pod.links import Links
from vrm_agent.pod.sync import SyncPodClient

__all__ = [
    "ClientCredentials",
    "DpopKey",
    "GraphResource",
    "Links",
    "PodClient",
    "PodResponse",
    "SyncPodClient",
    "with_retry_on_conflict",
]
