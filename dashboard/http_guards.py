"""ASGI middleware that guards every request before the application sees it: who the client is (a proxy's
X-Forwarded-* believed only from a configured proxy), how large a body may be (refused before it is read),
and the security headers of every response (HSTS when the request came over https)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import ClassVar

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HSTS = b"max-age=31536000"  # one year; no includeSubDomains: the bureau's other hosts are not ours to decide


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Addresses or CIDRs, comma separated (ISSUANCE_DASHBOARD_TRUSTED_PROXIES); ValueError on a bad one."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    """The comma-joined values of a request header (latin-1, as HTTP headers are)."""
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == name]
    return ",".join(values) if values else None


class ForwardedFor:
    """Believes X-Forwarded-For and X-Forwarded-Proto only when the TCP peer is a trusted proxy.

    The client is then the right-most X-Forwarded-For address that is not itself a trusted proxy (entries
    to its left were written by the client and prove nothing). From any other peer both headers are ignored:
    the client is the peer, local or not. Run the server without its own proxy-header handling (uvicorn
    `proxy_headers=False`), or it rewrites the peer before this sees it."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app, self.trusted = app, trusted

    def _trusts(self, host: str | None) -> bool:
        address = _address(host) if host else None
        return address is not None and any(address in net for net in self.trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.trusted:
            peer = scope.get("client")
            if peer and self._trusts(peer[0]):
                scope = dict(scope)
                forwarded = _header(scope, b"x-forwarded-for")
                if forwarded:
                    hops = [h.strip() for h in forwarded.split(",")]
                    client = next((h for h in reversed(hops) if not self._trusts(h)), hops[0])
                    if _address(client) is not None:
                        scope["client"] = (client, 0)
                proto = _header(scope, b"x-forwarded-proto")
                if proto:
                    nearest = proto.split(",")[-1].strip().lower()
                    if nearest in ("http", "https"):
                        scope["scheme"] = nearest
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """The request body grew past the limit while it was read."""


class BodyLimit:
    """Refuses a request body larger than `max_bytes` with 413: a declared Content-Length before anything is
    read, a chunked body as soon as what was read passes the limit (the rest is never read)."""

    def __init__(self, app: ASGIApp, max_bytes: int, page: Callable[[Scope], Response] | None = None) -> None:
        # `page`: the 413 page in the reader's language (rendered without reading the body); else plain text.
        self.app, self.max_bytes, self.page = app, max_bytes, page

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.page is not None:
            response = self.page(scope)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": b"request body too large\n"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = self.max_bytes + 1  # unreadable or repeated with different values: not read
            if length > self.max_bytes or length < 0:
                await self._refuse(scope, receive, send)
                return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)


class SecurityHeaders:
    """Headers on every response: no framing or sniffing, scripts only from this server, data never cached,
    and HSTS when the request came over https (directly, or per a trusted proxy's X-Forwarded-Proto)."""

    HEADERS: ClassVar[dict[bytes, bytes]] = {
        b"content-security-policy": b"default-src 'self'; script-src 'self'; style-src 'self';"
        b" img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        b"x-frame-options": b"DENY",
        b"x-content-type-options": b"nosniff",
        b"referrer-policy": b"no-referrer",
    }

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(self.HEADERS.items())
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                if https:
                    headers.append((b"strict-transport-security", HSTS))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
