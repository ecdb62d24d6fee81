"""What the daemon's handlers share, carried on the aiohttp application."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from vrm_agent.access.service import AccessControl
from vrm_agent.config import Config
from vrm_agent.integrity import SigningKey
from vrm_agent.pod.client import PodClient
from vrm_agent.pod.resource_server import SolidOidcVerifier

CONTEXT_KEY = web.AppKey("agent_context", object)


@dataclass
class AgentContext:
    """What the daemon's handlers share: the owner's pod, access control, the verifier."""

    config: Config
    pod: PodClient
    owner: str
    storage: str
    public_url: str
    access: AccessControl
    verifier: SolidOidcVerifier
    anonymous: PodClient
    signing_key: SigningKey | None = None  # signs agreements; named in the discovery document
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.public_url.rstrip("/") + path


def context_of(request: web.Request) -> AgentContext:
    return request.app[CONTEXT_KEY]  # type: ignore[return-value]
