"""How the dashboard is served (uvicorn), in one place for the command and the tests."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

# Open connections at most; more are answered 503 by the server instead of queueing without bound.
MAX_CONNECTIONS = 200


def server_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration: proxy headers are left to the app (dashboard.http_guards.ForwardedFor,
    which believes only configured proxies; uvicorn's own handling believes any local peer)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
        limit_concurrency=MAX_CONNECTIONS,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )
