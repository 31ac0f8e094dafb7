"""Login throttling and CSRF tokens: the parts of access control that are not about scope."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

MAX_FAILURES = 5
WINDOW_S = 15 * 60
LOCKOUT_S = 15 * 60


class LoginThrottle:
    """Refuses logins for a username or an address after too many recent failures for either."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        lockout_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username.strip().lower()}", f"addr:{address}"

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until a login may be tried again for this user from this address (0 when allowed)."""
        now = self._clock()
        with self._lock:
            return max(0.0, *(self._locked_until.get(k, 0.0) - now for k in self._keys(username, address)))

    def failed(self, username: str, address: str) -> None:
        """Record a failed login for both the username and the address."""
        now = self._clock()
        with self._lock:
            for key in self._keys(username, address):
                recent = self._failures.setdefault(key, deque())
                recent.append(now)
                while recent and recent[0] < now - self.window_s:
                    recent.popleft()
                if len(recent) >= self.max_failures:
                    self._locked_until[key] = now + self.lockout_s
                    recent.clear()

    def succeeded(self, username: str) -> None:
        """Forget the username's failures (the address keeps its own)."""
        with self._lock:
            self._failures.pop(self._keys(username, "")[0], None)


CSRF_FIELD = "csrf_token"


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def csrf_valid(session: MutableMapping[str, Any], submitted: str | None) -> bool:
    """True when the submitted token equals the session's (constant-time)."""
    expected = session.get(CSRF_FIELD)
    return isinstance(expected, str) and submitted is not None and hmac.compare_digest(expected, submitted)
