"""The embedded default pod: a local Community Solid Server the agent starts and manages for a
person who has no pod of their own.

Its state (port, flavour, PID, the owner's account) is one JSON file of mode 0600 in the data
folder, written after every step, so an interrupted first run resumes where it stopped and a
second ``pod up`` reuses the same account, pod and credentials.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vrm_agent.config import read_json, write_private
from vrm_agent.errors import ConfigError, PodError
from vrm_agent.pod.auth import ClientCredentials
from vrm_agent.podserver.accounts import AccountApi
from vrm_agent.podserver.process import (
    Flavour,
    answers,
    base_url_for,
    is_pod_server,
    start_server,
    stop_pid,
)

DEFAULT_PORT = 3000
DEFAULT_POD_NAME = "me"
STATE_FILE = "embedded-pod.json"


@dataclass
class OwnerAccount:
    email: str
    password: str
    pod: str | None = None
    webid: str | None = None
    client_id: str | None = None
    client_secret: str | None = None

    @property
    def credentials(self) -> ClientCredentials | None:
        if self.webid and self.client_id and self.client_secret:
            return ClientCredentials(self.webid, self.client_id, self.client_secret)
        return None


@dataclass
class EmbeddedPod:
    data_dir: Path
    port: int = DEFAULT_PORT
    flavour: Flavour = Flavour.WAC
    pid: int | None = None
    owner: OwnerAccount | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return base_url_for(self.port)

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    @property
    def server_data(self) -> Path:
        return self.data_dir / "pod-data"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "pod-server.log"

    @classmethod
    def load(cls, data_dir: Path) -> EmbeddedPod:
        state = read_json(data_dir / STATE_FILE)
        pod = cls(data_dir=data_dir)
        if state:
            try:
                pod.port = int(state["port"])
                pod.flavour = Flavour(state["flavour"])
                pod.pid = state.get("pid")
                pod.owner = OwnerAccount(**state["owner"]) if state.get("owner") else None
            except (KeyError, ValueError, TypeError) as exc:
                raise ConfigError(f"{data_dir / STATE_FILE} is damaged: {exc}") from exc
        return pod

    @property
    def exists(self) -> bool:
        return self.state_path.exists()

    def save(self) -> None:
        write_private(self.state_path, {
            "port": self.port,
            "flavour": self.flavour.value,
            "pid": self.pid,
            "base_url": self.base_url,
            "owner": asdict(self.owner) if self.owner else None,
        })

    def running(self) -> bool:
        return self.pid is not None and is_pod_server(self.pid) and answers(self.base_url)

    def start(self) -> bool:
        """Start the server unless it runs already; True if it was started now."""
        if self.running():
            return False
        server = start_server(port=self.port, flavour=self.flavour, data_dir=self.server_data,
                              log_path=self.log_path)
        self.pid = server.pid
        self.save()
        return True

    def stop(self) -> bool:
        stopped = self.pid is not None and stop_pid(self.pid)
        self.pid = None
        if self.exists:
            self.save()
        return stopped

    async def ensure_owner(self, pod_name: str = DEFAULT_POD_NAME) -> ClientCredentials:
        """Create the owner's account, pod and client credentials, one saved step at a time."""
        if self.owner is None:
            self.owner = OwnerAccount(email=f"{pod_name}@vrm-agent.localhost",
                                      password=secrets.token_urlsafe(24))
            self.save()
        owner = self.owner
        async with AccountApi(self.base_url) as api:
            token: str | None = None
            if owner.webid is None:
                try:
                    token = await api.create_account(owner.email, owner.password)
                except PodError:
                    token = await api.log_in(owner.email, owner.password)  # made on a prior run
                owner.pod, owner.webid = await api.create_pod(token, pod_name)
                self.save()
            if owner.credentials is None:
                token = token or await api.log_in(owner.email, owner.password)
                owner.client_id, owner.client_secret = await api.create_client_credentials(
                    token, "vrm-agent", owner.webid
                )
                self.save()
        credentials = owner.credentials
        assert credentials is not None
        return credentials


def prepare(data_dir: Path, *, port: int | None, acp: bool | None) -> EmbeddedPod:
    """Load the embedded pod's state and reconcile it with what was asked for now."""
    pod = EmbeddedPod.load(data_dir)
    if pod.exists and pod.owner is not None and pod.owner.webid is not None:
        # The pod's data holds absolute URLs and was made for one access-control system.
        if port is not None and port != pod.port:
            raise ConfigError(
                f"the pod in {data_dir} lives on port {pod.port}; start it without --port "
                "or use another --data folder"
            )
        if acp is not None and (Flavour.ACP if acp else Flavour.WAC) != pod.flavour:
            raise ConfigError(
                f"the pod in {data_dir} uses {pod.flavour.value.upper()}; "
                "use another --data folder for the other flavour"
            )
    else:
        pod.port = port or pod.port
        if acp is not None:
            pod.flavour = Flavour.ACP if acp else Flavour.WAC
    return pod
