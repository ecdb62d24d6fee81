"""The dashboard's sessions: random ids kept server-side (the cookie carries nothing else),
bounded in number and in lifetime, each with its CSRF token and the flash messages of the next
page. Pure: the caller passes the time."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

SESSIONS = 16  # the person's browsers at once; the least recently used gives way
LIFETIME_SECONDS = 8 * 3600.0  # then log in again, however active
IDLE_SECONDS = 3600.0  # an hour without a request ends a session
FLASHES = 5  # messages kept for the next page


@dataclass
class Session:
    id: str
    webid: str
    csrf: str
    created: float
    seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)

    def flash(self, kind: str, text: str) -> None:
        self.flashes = [*self.flashes, (kind, text)][-FLASHES:]

    def take_flashes(self) -> list[tuple[str, str]]:
        taken, self.flashes = self.flashes, []
        return taken

    def csrf_ok(self, token: object) -> bool:
        return isinstance(token, str) and secrets.compare_digest(token, self.csrf)


class Sessions:
    def __init__(self, capacity: int = SESSIONS, lifetime: float = LIFETIME_SECONDS,
                 idle: float = IDLE_SECONDS) -> None:
        self._capacity, self._lifetime, self._idle = capacity, lifetime, idle
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def create(self, webid: str, now: float) -> Session:
        while len(self._by_id) >= self._capacity:
            self._by_id.popitem(last=False)
        session = Session(secrets.token_urlsafe(32), webid, secrets.token_urlsafe(32), now, now)
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None, now: float) -> Session | None:
        session = self._by_id.get(session_id) if session_id else None
        if session is None:
            return None
        if now - session.created > self._lifetime or now - session.seen > self._idle:
            del self._by_id[session.id]
            return None
        session.seen = now
        self._by_id.move_to_end(session.id)
        return session

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._by_id.pop(session_id, None)
