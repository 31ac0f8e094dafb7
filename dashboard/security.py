"""Login throttling and CSRF tokens: the parts of access control that are not about scope.

Every structure here is bounded whatever the requests: a flood of usernames or addresses cannot grow the
process (the tracked keys have a hard cap, evicting the least recently used), and password checks, which
cost 64 MiB of memory each (argon2id), run a few at a time, never two at once for one account or address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

MAX_FAILURES = 5
WINDOW_S = 15 * 60
LOCKOUT_S = 15 * 60
MAX_TRACKED_KEYS = 10_000
# Password checks under way at once, whoever asks: argon2id takes 64 MiB and a CPU for ~0.1 s per check.
CHECKS_AT_ONCE = 2
# A refused parallel attempt may come back this soon.
BUSY_RETRY_S = 1.0
_KEY_CHARS = 128  # usernames are keyed by at most this many characters (longer ones are no user anyway)

V = TypeVar("V")


class BoundedLRU(Generic[V]):
    """A mapping that never holds more than `max_keys` keys: adding one more drops the least recently used."""

    def __init__(self, max_keys: int) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_keys:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a login is not checked now, and when it may be tried again."""

    retry_after_s: float
    locked: bool  # True: too many failures (minutes); False: another check is under way (a moment)

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after_s)))


class LoginThrottle:
    """Admits a password check only when neither the username nor the address is locked out, no check for
    either is under way, and fewer than `checks_at_once` checks run in total; locks a username or an address
    for `lockout_s` after `max_failures` failures within `window_s`.

    A check is admitted with `admit` and must be ended with `done`. Because a username has at most one check
    under way and each failure is counted before the next is admitted, parallel guesses for one account are
    refused, not checked: at most `max_failures` wrong passwords are ever checked before the lock."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        lockout_s: float = LOCKOUT_S,
        max_keys: int = MAX_TRACKED_KEYS,
        checks_at_once: int = CHECKS_AT_ONCE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self.checks_at_once = checks_at_once
        self._clock = clock
        self._failures: BoundedLRU[deque[float]] = BoundedLRU(max_keys)
        self._locked_until: BoundedLRU[float] = BoundedLRU(max_keys)
        self._in_flight: set[str] = set()  # keys of the checks under way (two per check)
        self._lock = threading.Lock()
        self.peak_checks = 0  # the most checks ever under way at once (for tests and curiosity)

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username.strip().lower()[:_KEY_CHARS]}", f"addr:{address[:_KEY_CHARS]}"

    def tracked_keys(self) -> int:
        """How many usernames and addresses are remembered now (bounded by the cap, twice)."""
        with self._lock:
            return len(self._failures) + len(self._locked_until) + len(self._in_flight)

    def _locked_for(self, key: str, now: float) -> float:
        until = self._locked_until.get(key)
        if until is None:
            return 0.0
        if until <= now:
            self._locked_until.pop(key)
            return 0.0
        return until - now

    def admit(self, username: str, address: str) -> Refusal | None:
        """None when the check may run now (then call `done`), else the refusal to answer with 429."""
        now = self._clock()
        keys = self._keys(username, address)
        with self._lock:
            wait = max(self._locked_for(k, now) for k in keys)
            if wait > 0:
                return Refusal(wait, locked=True)
            if any(k in self._in_flight for k in keys) or len(self._in_flight) >= 2 * self.checks_at_once:
                return Refusal(BUSY_RETRY_S, locked=False)
            self._in_flight.update(keys)
            self.peak_checks = max(self.peak_checks, len(self._in_flight) // 2)
            return None

    def done(self, username: str, address: str, *, succeeded: bool) -> None:
        """End an admitted check: a failure counts for both the username and the address."""
        now = self._clock()
        keys = self._keys(username, address)
        with self._lock:
            self._in_flight.difference_update(keys)
            if succeeded:
                self._failures.pop(keys[0])  # the address keeps its own failures
                return
            for key in keys:
                recent = self._failures.get(key)
                if recent is None:
                    recent = deque(maxlen=self.max_failures)
                    self._failures.put(key, recent)
                recent.append(now)
                while recent and recent[0] < now - self.window_s:
                    recent.popleft()
                if len(recent) >= self.max_failures:
                    self._locked_until.put(key, now + self.lockout_s)
                    self._failures.pop(key)


# CSRF tokens need no server state: before login the token is bound to a random value in a cookie of its
# own, after login to the session id; both by an HMAC under the dashboard's secret.
CSRF_FIELD = "csrf_token"


def _mac(secret: str, purpose: bytes, value: str) -> str:
    digest = hmac.new(secret.encode(), purpose + b"\0" + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_login_nonce() -> str:
    """The random value of the login form's cookie."""
    return secrets.token_urlsafe(24)


def login_csrf_token(secret: str, nonce: str) -> str:
    """The login form's token, bound to the nonce of its cookie."""
    return _mac(secret, b"login", nonce)


def session_csrf_token(secret: str, session_id: str) -> str:
    """The token of every form of a logged-in session (changes with each login)."""
    return _mac(secret, b"session", session_id)


def csrf_valid(expected: str | None, submitted: str | None) -> bool:
    """True when the submitted token equals the expected one (constant-time)."""
    return (
        expected is not None
        and submitted is not None
        and hmac.compare_digest(expected.encode(), submitted.encode())
    )
