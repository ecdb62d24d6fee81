"""Running Community Solid Server: the pinned npm install, server processes, and the v7 account
API. The embedded default pod and the test harness both stand on this room."""

from vrm_agent.podserver.accounts import AccountApi, PodAccount
from vrm_agent.podserver.install import ensure_installed
from vrm_agent.podserver.process import CssServer, Flavour, start_server, stop_pid

__all__ = [
    "AccountApi",
    "CssServer",
    "Flavour",
    "PodAccount",
    "ensure_installed",
    "start_server",
    "stop_pid",
]
