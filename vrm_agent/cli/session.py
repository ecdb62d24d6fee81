"""Opening the person's pod for a command: the logged-in client and the storage root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from vrm_agent.access.service import AccessControl
from vrm_agent.config import Config
from vrm_agent.pod.client import PodClient


@dataclass
class PodSession:
    pod: PodClient
    webid: str
    storage: str

    def access(self) -> AccessControl:
        return AccessControl(self.pod, owner_webid=self.webid, storage=self.storage)


@asynccontextmanager
async def open_pod(config: Config) -> AsyncIterator[PodSession]:
    credentials = config.credentials()
    async with PodClient(credentials) as pod:
        storage = config.settings.get("storage")
        if not storage:
            storage = await pod.find_storage()
            config.settings["storage"] = storage
            config.save()
        yield PodSession(pod, credentials.webid, str(storage))
