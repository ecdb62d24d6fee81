"""Starting and stopping Community Solid Server processes, each known by its PID."""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vrm_agent.errors import VrmAgentError
from vrm_agent.podserver.install import ensure_installed


class Flavour(enum.StrEnum):
    """Which access-control system the server enforces."""

    WAC = "wac"
    ACP = "acp"

    @property
    def css_config(self) -> str:
        # The file backend with WAC or ACP; never default.json, whose root is publicly writable.
        return "@css:config/file.json" if self is Flavour.WAC else "@css:config/file-acp.json"


class PodServerError(VrmAgentError):
    """The pod server did not start, or could not be stopped."""


@dataclass(frozen=True)
class CssServer:
    pid: int
    port: int
    base_url: str
    flavour: Flavour
    data_dir: Path
    log_path: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_url_for(port: int) -> str:
    # CSS must be addressed as localhost: with 127.0.0.1 every authenticated request is refused,
    # because the DPoP htu and the server's own base URL differ.
    return f"http://localhost:{port}/"


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def answers(base_url: str, timeout: float = 2.0) -> bool:
    """True when an HTTP server answers at base_url (any status)."""
    try:
        with urllib.request.urlopen(base_url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def start_server(
    *,
    port: int,
    flavour: Flavour,
    data_dir: Path,
    log_path: Path,
    ready_timeout: float = 90.0,
) -> CssServer:
    """Start CSS in its own session (it outlives the caller) and wait for its first answer."""
    server_js = ensure_installed()
    node = shutil.which("node")
    if node is None:
        raise PodServerError("Node.js is needed to run the pod server")
    base_url = base_url_for(port)
    if answers(base_url, timeout=1.0):
        raise PodServerError(f"port {port} is already in use by another server")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        node, str(server_js), "-c", flavour.css_config, "-p", str(port), "-b", base_url,
        "-f", str(data_dir), "-l", "warn",
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=server_js.parents[4],
        )
    server = CssServer(process.pid, port, base_url, flavour, data_dir, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PodServerError(
                f"the pod server exited with code {process.returncode}; its log ends with:\n"
                + log_tail(log_path)
            )
        if answers(base_url):
            return server
        time.sleep(0.25)
    stop_pid(process.pid)
    raise PodServerError(
        f"the pod server did not answer within {ready_timeout:.0f} s; its log ends with:\n"
        + log_tail(log_path)
    )


def is_pod_server(pid: int) -> bool:
    """Whether pid is alive and runs Community Solid Server (guards against a reused PID)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"community-server" in cmdline.read_bytes()
        except OSError:
            return False
    return True  # no /proc (macOS): trust the PID we recorded


def stop_pid(pid: int, timeout: float = 15.0) -> bool:
    """Stop the pod server with this PID: SIGTERM, then SIGKILL. False if it was not running."""
    if not is_pod_server(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        if not _alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        with contextlib.suppress(OSError, IndexError):
            return stat.read_text().split(")")[-1].split()[0] != "Z"  # a zombie is gone
    return True
