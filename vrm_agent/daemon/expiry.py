"""Ending grants on time when no daemon runs: a small detached keeper process.

``vrm-agent share`` starts it when it is not running yet; it reconciles at start (nothing
expired stays in force after a restart), sleeps until the next grant ends, and leaves when no
grant remains. One keeper per config: an exclusive lock on a file beside the config decides, and
the daemon holds the same lock while it runs its own expiry loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from vrm_agent.access.service import AccessControl


def lock_path(config_path: Path) -> Path:
    return config_path.with_name(config_path.stem + ".expiry.lock")


@contextlib.contextmanager
def expiry_lock(config_path: Path) -> Iterator[bool]:
    """Yields True when this process now owns the expiry work for this config."""
    path = lock_path(config_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(path, "a+")  # noqa: SIM115 - held for the life of the block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield True
    finally:
        handle.close()


def keeper_running(config_path: Path) -> bool:
    with expiry_lock(config_path) as acquired:
        return not acquired


def start_keeper(config_path: Path) -> bool:
    """Start a detached keeper unless one (or the daemon) already does the work."""
    if keeper_running(config_path):
        return False
    log = config_path.with_name(config_path.stem + ".expiry.log")
    with open(log, "ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "vrm_agent.cli.main", "grants", "keep-expiry",
             "--config", str(config_path)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return True


async def keep_until_no_grants(access: AccessControl, *, max_sleep: float = 60.0) -> None:
    """Reconcile, then sleep until the next end, until no grant is left."""
    while True:
        _, upcoming = await access.reconcile()
        if upcoming is None:
            return
        delay = (upcoming - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(min(max_sleep, max(0.0, delay)) + 0.05)


def keeper_pid(config_path: Path) -> int | None:
    """The PID of the process holding the expiry lock, if one does."""
    if not keeper_running(config_path):
        return None
    try:
        return int(lock_path(config_path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
