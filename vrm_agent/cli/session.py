"""Opening the person's pod for a command: the logged-in client and the storage root.

The pod client, the access layer and the negotiation service are imported by the functions that
open them, not with this module: every command module imports it, and `vrm-agent --help` should
not load them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vrm_agent.config import Config
from vrm_agent.daemon import DEFAULT_HOST, DEFAULT_PORT

if TYPE_CHECKING:
    from vrm_agent.access.service import AccessControl
    from vrm_agent.daemon.negotiations import NegotiationService
    from vrm_agent.pod.client import PodClient


@dataclass
class PodSession:
    pod: PodClient
    webid: str
    storage: str

    def access(self) -> AccessControl:
        from vrm_agent.access.service import AccessControl

        return AccessControl(self.pod, owner_webid=self.webid, storage=self.storage)


@asynccontextmanager
async def open_pod(config: Config) -> AsyncIterator[PodSession]:
    from vrm_agent.pod.client import PodClient

    credentials = config.credentials()
    async with PodClient(credentials) as pod:
        storage = config.settings.get("storage")
        if not storage:
            storage = await pod.find_storage()
            config.settings["storage"] = storage
            config.save()
        yield PodSession(pod, credentials.webid, str(storage))


@asynccontextmanager
async def open_negotiations(config: Config) -> AsyncIterator[NegotiationService]:
    """The negotiation service as a command uses it; audit entries are written and vendors
    told before the command returns."""
    from vrm_agent.daemon.negotiations import NegotiationService
    from vrm_agent.daemon.notify import Notifier
    from vrm_agent.integrity.keys import SigningKey

    async with open_pod(config) as session:
        daemon = config.settings.get("daemon", {})
        agent_url = daemon.get("public_url") or (
            f"http://{daemon.get('host', DEFAULT_HOST)}:{daemon.get('port', DEFAULT_PORT)}/")
        key = SigningKey.from_secret(config.signing_secret())
        await session.pod.access_token()  # logged in: the issuer is known
        notifier = Notifier(key, storage=session.storage, agent_url=agent_url,
                            issuer=session.pod.issuer)  # the daemon's rules: docs/protocol.md §9
        service = NegotiationService(
            session.pod, owner=session.webid, storage=session.storage, agent_url=agent_url,
            signing_key=key, access=session.access(), notifier=notifier)
        try:
            yield service
        finally:
            await service.flush()
            await notifier.drain()


def vendor_told(service: NegotiationService) -> str:
    """How the vendor heard of a decision, after the notifications were delivered or given up."""
    if service.notifier.failed:
        return ("the vendor could not be told (its callback address did not take the message); "
                "it sees the change at the negotiation's status URL")
    if service.notifier.delivered:
        return "the vendor has been told"
    return "the vendor gave no callback address; it sees the change at the status URL"


async def vendor_names(pod: PodClient, storage: str) -> dict[str, str]:
    """The names the person's ledger gives vendors, by the vendor's WebID: listings show
    "ACME" where they can, not an IRI. A ledger that cannot be read names nobody."""
    from vrm_agent.errors import VrmAgentError
    from vrm_agent.ledger.records import Vendor
    from vrm_agent.ledger.store import Ledger

    try:
        vendors = await Ledger(pod, storage).list(Vendor)
    except VrmAgentError:
        return {}
    return {v.webid: v.name for v in vendors if v.webid and v.name}


def named(webid: str, names: dict[str, str]) -> str:
    """How a listing shows a vendor: its name from the ledger, or its WebID."""
    return names.get(webid, webid)
