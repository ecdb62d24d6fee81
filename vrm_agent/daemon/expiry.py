"""Ending grants on time when no daemon runs: a small detached keeper process.

``vrm-agent share`` starts it when it is not running yet; it reconciles at start (nothing
expired stays in force after a restart), then works from the grant index exactly as the daemon's
loop does (agreements end, vendors are told, every expiry is in the audit log), and leaves when
no grant remains. One keeper per config: an exclusive lock on a file beside the config decides, and
the daemon holds the same lock while it runs its own expiry loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vrm_agent.access.service import INDEX_POLL_SECONDS
from vrm_agent.daemon.negotiations import NegotiationService
from vrm_agent.errors import PodError, VrmAgentError

log = logging.getLogger("vrm_agent.daemon.expiry")


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


async def keep_until_no_grants(service: NegotiationService, *,
                               poll: float = INDEX_POLL_SECONDS) -> None:
    """End grants and agreements on time, as the daemon does, until no grant is left: the due
    ones come from the grant index, read again (conditionally) every ``poll`` seconds so a grant
    another process adds is seen at once. Grants the index does not know are looked for once,
    at start."""
    access = service.access
    # The look through every document runs beside the loop, so a grant that ends soon after
    # the keeper starts does not wait for it.
    startup = asyncio.create_task(access.reconcile())
    try:
        while True:
            upcoming = None
            try:
                _, upcoming = await service.expire_due()
                if startup.done() and not (await access.index()).entries:
                    return
            except (PodError, VrmAgentError) as exc:  # the pod is down: the grants still end
                log.warning("expiry pass failed", extra={"problem": str(exc)})
            if startup.done() and not startup.cancelled() and startup.exception():
                log.warning("start-up look through the documents failed",
                            extra={"problem": str(startup.exception())})
                startup = asyncio.create_task(access.reconcile())
            access.deadline.reset(upcoming)
            await access.deadline.sleep(max_sleep=poll)
    finally:
        startup.cancel()


def keeper_pid(config_path: Path) -> int | None:
    """The PID of the process holding the expiry lock, if one does."""
    if not keeper_running(config_path):
        return None
    try:
        return int(lock_path(config_path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
