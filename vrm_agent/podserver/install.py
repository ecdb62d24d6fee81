"""The Community Solid Server install, pinned by the package-lock.json shipped with the package.

``npm ci`` runs once into ``vrm_agent/podserver/npm/node_modules`` (inside the project in a source
checkout), or into the user's data folder when the package folder is read-only. A stamp holding the
lockfile's hash tells whether the install matches the lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import platformdirs

from vrm_agent.errors import VrmAgentError

NPM_DIR = Path(__file__).parent / "npm"
SERVER_JS = Path("node_modules/@solid/community-server/bin/server.js")
_STAMP = Path("node_modules/.vrm-agent-lock-sha256")


class PodServerInstallError(VrmAgentError):
    """Node, npm or the pinned Community Solid Server could not be installed or found."""


def _lock_hash(folder: Path) -> str:
    return hashlib.sha256((folder / "package-lock.json").read_bytes()).hexdigest()


def install_dir() -> Path:
    """Where the pinned CSS lives: $VRM_AGENT_CSS_DIR, the package's own npm folder when writable,
    else a copy of the lockfile in the user's data folder."""
    override = os.environ.get("VRM_AGENT_CSS_DIR")
    if override:
        return Path(override)
    if os.access(NPM_DIR, os.W_OK):
        return NPM_DIR
    return Path(platformdirs.user_data_dir("vrm-agent")) / "css"


def ensure_installed(*, quiet: bool = False) -> Path:
    """Install the pinned CSS if needed; return the path of its ``server.js``."""
    folder = install_dir()
    server_js = folder / SERVER_JS
    folder.mkdir(parents=True, exist_ok=True)
    if folder != NPM_DIR:
        for name in ("package.json", "package-lock.json"):
            if not (folder / name).exists() or (folder / name).read_bytes() != (
                NPM_DIR / name
            ).read_bytes():
                shutil.copyfile(NPM_DIR / name, folder / name)
    wanted = _lock_hash(folder)
    # Several processes (parallel tests, a CLI and the daemon) may ask at once: one installs.
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = folder / _STAMP
        if server_js.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
            return server_js
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            raise PodServerInstallError("Node.js 20 and npm are needed to run the pod server")
        if not quiet:
            print("Installing Community Solid Server (pinned by package-lock.json)...", flush=True)
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=folder, capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 or not server_js.exists():
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise PodServerInstallError(
                "npm ci of the pinned Community Solid Server failed: " + " | ".join(tail)
            )
        stamp.write_text(wanted + "\n")
    return server_js
