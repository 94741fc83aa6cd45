"""Signed-in attendants: a random session id in an HttpOnly, SameSite=Strict cookie.

The token an attendant signs in with is checked against the tokens file (auth.tokens_file)
and kept only in this process's memory, with the session, to call fusion and the lane
agent on the attendant's behalf. Neither the token nor the session id is ever logged or
put in a URL. Each session has its own CSRF token that every form posts back.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field

from lanesight.common.auth import Identity, TokenRegistry

log = logging.getLogger(__name__)

#: The roles that may sign in to the console.
CONSOLE_ROLES = frozenset({"attendant", "manager"})
#: Sessions kept at once; the least recently used go first beyond this.
MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One signed-in attendant."""

    identity: Identity
    token: str = field(repr=False)
    csrf: str = field(repr=False)
    created: float
    last_seen: float

    def stores(self, console_stores: list[str]) -> list[str]:
        """The console's stores this attendant may see."""
        return [store for store in console_stores if self.identity.may_access_store(store)]

    def csrf_ok(self, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(presented, self.csrf)


class SignInError(Exception):
    """The token was not accepted; the message is safe to show."""


class SessionStore:
    """Sessions by id, expiring after max_age_s or idle_s."""

    def __init__(self, registry: TokenRegistry, max_age_s: float, idle_s: float) -> None:
        self.registry = registry
        self.max_age_s = max_age_s
        self.idle_s = idle_s
        self._sessions: dict[str, Session] = {}

    def sign_in(self, token: str) -> tuple[str, Session]:
        """A new session for a valid console token: (session id, session)."""
        token = token.strip()
        identity = self.registry.lookup(token) if token else None
        if identity is None:
            log.info("console: sign-in refused: unknown token")
            raise SignInError("That sign-in code is not valid.")
        if identity.role not in CONSOLE_ROLES:
            log.info("console: sign-in refused for %s (role %s)", identity.name, identity.role)
            raise SignInError("That code is not for the attendant console.")
        now = time.monotonic()
        self._expire(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda sid: self._sessions[sid].last_seen)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(32)
        session = Session(identity, token, secrets.token_urlsafe(32), now, now)
        self._sessions[session_id] = session
        log.info("console: %s (role %s) signed in", identity.name, identity.role)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for a cookie value, or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.created > self.max_age_s or now - session.last_seen > self.idle_s:
            del self._sessions[session_id]
            return None
        # A token removed from the tokens file ends its sessions too.
        if self.registry.lookup(session.token) != session.identity:
            del self._sessions[session_id]
            log.info("console: session of %s ended: token no longer valid", session.identity.name)
            return None
        session.last_seen = now
        return session

    def sign_out(self, session_id: str | None) -> None:
        session = self._sessions.pop(session_id or "", None)
        if session is not None:
            log.info("console: %s signed out", session.identity.name)

    def _expire(self, now: float) -> None:
        for sid, session in list(self._sessions.items()):
            if now - session.created > self.max_age_s or now - session.last_seen > self.idle_s:
                del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)
