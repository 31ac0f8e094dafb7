"""The Starlette application: login, pages, JSON API and /metrics, every read scoped to the logged-in user."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import psycopg
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from dashboard import language, reads, sessions
from dashboard.db import Database
from dashboard.http_guards import BodyLimit, ForwardedFor, SecurityHeaders, parse_networks
from dashboard.labels import Labels
from dashboard.metrics import metrics_text
from dashboard.security import (
    CHECKS_AT_ONCE,
    CSRF_FIELD,
    MAX_TRACKED_KEYS,
    LoginThrottle,
    Refusal,
    csrf_valid,
    login_csrf_token,
    new_login_nonce,
    session_csrf_token,
)
from dashboard.users import User, authenticate
from issuance import i18n
from issuance.crypto import Vault
from issuance.i18n import N_, Lang
from issuance.store.audit import NOT_SHOWN, dashboard_actor, record_action
from issuance.store.db import DatabaseUnavailable, with_role
from issuance.store.report_queries import Filters, Scope, compact
from issuance.store.roles import DASHBOARD

HERE = Path(__file__).parent
SESSION_COOKIE = "issuance_dashboard"
LOGIN_COOKIE = "issuance_dashboard_login"  # the login form's CSRF nonce (no server state before login)
COMPACT_EVERY_S = 60.0
DOMAIN = "dashboard"  # the gettext domain of every text the dashboard shows

# What a page says when it cannot show what was asked; translated when rendered (issuance.i18n.N_).
OUT_OF_SCOPE = N_("That branch or bank is outside your access.")
BAD_DATE = N_("The business date must be written YYYY-MM-DD.")
FORM_EXPIRED = N_("The form expired; please try again.")
WRONG_LOGIN = N_("Wrong username or password.")
SESSION_ENDED = N_(
    "Your session has ended (signed out, idle too long, or ended by an operator). Please sign in again."
)
LOGIN_BUSY = N_("Another login for this account or address is being checked. Try again in a moment.")
ERRORS: dict[int, tuple[str, str]] = {
    400: (N_("Cannot be read"), N_("The address asks for something this page cannot read.")),
    403: (N_("Not allowed"), N_("You may not do this.")),
    404: (N_("Not found"), N_("There is no such page.")),
    405: (N_("Not allowed"), N_("This page cannot be used that way.")),
    413: (N_("Too large"), N_("What was sent is larger than this dashboard accepts.")),
    429: (N_("Too many requests"), N_("Too many requests at once. Try again in a moment.")),
    500: (
        N_("Something went wrong"),
        N_("The dashboard could not answer. Try again; if it persists, tell the operators."),
    ),
}


@dataclass
class DashboardConfig:
    """Everything the app needs, built by the `issuance dashboard` command or a test."""

    database_url: str
    users: dict[str, User]
    vault: Vault
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    https: bool = False
    metrics_token: str | None = None
    timezone: str = "Asia/Shanghai"
    language: str = (
        i18n.DEFAULT
    )  # ISSUANCE_LANGUAGE: the pages' language when neither reader nor browser says
    reminder_days: int = 30  # a card at its branch longer than this is on the reminder list (backlog page)
    trusted_proxies: str = ""  # addresses/CIDRs whose X-Forwarded-For/-Proto are believed
    max_body_bytes: int = 16_384
    session_idle_s: float = 30 * 60
    session_absolute_s: float = 8 * 3600
    throttle_max_keys: int = MAX_TRACKED_KEYS
    password_checks_at_once: int = CHECKS_AT_ONCE


class BadFilter(Exception):
    """A query parameter that cannot be read."""


class OutOfScope(Exception):
    """A filter names a branch or bank the user may not see."""


def filters_of(request: Request) -> Filters:
    """The filter bar's choices from the query string (empty values mean 'all')."""
    p = request.query_params
    raw_date = p.get("date") or None
    try:
        business_date = date.fromisoformat(raw_date) if raw_date else None
    except ValueError as exc:
        raise BadFilter(f"date must be YYYY-MM-DD, not {raw_date!r}") from exc
    return Filters(p.get("area") or None, p.get("branch") or None, p.get("bank") or None, business_date)


def dumps(payload: Any) -> str:
    """JSON for the API (dates as ISO text)."""
    return json.dumps(payload, default=str, ensure_ascii=False)


def script_json(payload: Any) -> str:
    """JSON safe to place inside a <script type="application/json"> element."""
    return dumps(payload).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def create_app(config: DashboardConfig) -> Starlette:
    """The dashboard as an ASGI app."""
    db = Database(with_role(config.database_url, DASHBOARD), timezone=config.timezone)
    policy = sessions.SessionPolicy(config.session_idle_s, config.session_absolute_s)
    throttle = LoginThrottle(max_keys=config.throttle_max_keys, checks_at_once=config.password_checks_at_once)
    templates = language.templates(HERE / "templates", i18n.BUSINESS_ZONE.key)
    default_language = i18n.normalize(config.language)
    stop = threading.Event()

    def lang_of(request: Request) -> Lang:
        """The request's language (reader's choice, browser, setting), decided once per request."""
        code = request_language_code(request, default_language)
        return i18n.lang(code)

    def text(request: Request, msgid: str) -> str:
        return lang_of(request).gettext(msgid, DOMAIN)

    def session_id_of(request: Request) -> str | None:
        return request.cookies.get(SESSION_COOKIE) or None

    def user_of(request: Request) -> User | None:
        """The user of the request's live session (looked up once per request; records the request)."""
        if "user" in request.scope.get("state", {}):
            found: User | None = request.state.user
            return found
        user = None
        session_id = session_id_of(request)
        if session_id:
            with db.connection() as conn:
                name = sessions.touch(conn, session_id, policy)
            user = config.users.get(name) if name is not None else None
        request.state.user = user
        return user

    def compact_now_and_then() -> None:
        # Folding the summary rows keeps the counting queries short; done off the request path, with the
        # deletion of sessions that ended long ago.
        while True:
            try:
                with db.connection() as conn:
                    compact(conn)
                    sessions.delete_ended(conn)
            except (psycopg.Error, DatabaseUnavailable):
                pass  # the next round tries again; pages stay exact either way
            if stop.wait(COMPACT_EVERY_S):
                return

    def secure_cookies(request: Request) -> bool:
        return config.https or request.url.scheme == "https"

    def render(
        request: Request,
        template: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        user = context.setdefault("user", user_of(request))
        session_id = session_id_of(request)
        nonce = None
        if user is not None and session_id:
            token = session_csrf_token(config.secret_key, session_id)
        else:
            # Before login the token is bound to a random cookie: nothing is kept on the server.
            nonce = request.cookies.get(LOGIN_COOKIE) or new_login_nonce()
            token = login_csrf_token(config.secret_key, nonce)
        context["csrf_token"] = token
        context["csrf_field"] = CSRF_FIELD
        chosen = templates[lang_of(request).code]
        response = chosen.TemplateResponse(request, template, context, status_code=status, headers=headers)
        if nonce is not None and request.cookies.get(LOGIN_COOKIE) != nonce:
            set_cookie(request, response, LOGIN_COOKIE, nonce)
        return response

    def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
        # A browser-session cookie: the server decides when a session ends (idle and absolute timeouts).
        response.set_cookie(
            name, value, path="/", httponly=True, samesite="strict", secure=secure_cookies(request)
        )

    def page(
        template: str, read: Callable[[Any, Scope, Filters], dict[str, Any]]
    ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            user = user_of(request)
            if user is None:
                return to_login(request)
            try:
                filters = filters_of(request)
                if not user.scope.permits(filters):
                    raise OutOfScope
            except BadFilter:
                return error(request, 400, text(request, BAD_DATE))
            except OutOfScope:
                return error(request, 403, text(request, OUT_OF_SCOPE))
            with db.connection() as conn:
                data = read(conn, user.scope, filters)
                options = reads.choices(conn, user.scope)
            return render(
                request,
                template,
                data=data,
                filters=filters,
                choices=options,
                query=request.url.query,
                data_json=script_json(data),
                labels_json=script_json(language.chart_labels(Labels(lang_of(request)), data)),
            )

        return endpoint

    def api(read: Callable[[Any, Scope, Filters], dict[str, Any]]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            user = user_of(request)
            if user is None:
                return Response(dumps({"error": "login required"}), 401, media_type="application/json")
            try:
                filters = filters_of(request)
            except BadFilter as exc:
                return Response(dumps({"error": str(exc)}), 400, media_type="application/json")
            if not user.scope.permits(filters):
                return Response(dumps({"error": "outside your access"}), 403, media_type="application/json")
            with db.connection() as conn:
                return Response(dumps(read(conn, user.scope, filters)), media_type="application/json")

        return endpoint

    def lookup(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return to_login(request)
        application_id = (
            request.path_params.get("application_id") or request.query_params.get("id") or ""
        ).strip()
        found = None
        if application_id:
            with db.connection() as conn:
                found = reads.application(conn, user.scope, config.vault, application_id)
                record_read(conn, user, application_id, "page", found is not None)
        status = 404 if application_id and found is None else 200
        return render(request, "application.html", status, application_id=application_id, app=found)

    def api_application(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return Response(dumps({"error": "login required"}), 401, media_type="application/json")
        application_id = request.path_params["application_id"]
        with db.connection() as conn:
            found = reads.application(conn, user.scope, config.vault, application_id)
            record_read(conn, user, application_id, "api", found is not None)
        if found is None:
            # The same answer whether the application does not exist or belongs to someone else.
            return Response(dumps({"error": "not found"}), 404, media_type="application/json")
        return Response(dumps(found), media_type="application/json")

    def api_me(request: Request) -> Response:
        user = user_of(request)
        if user is None:
            return Response(dumps({"error": "login required"}), 401, media_type="application/json")
        s = user.scope
        return Response(
            dumps(
                {
                    "username": user.username,
                    "role": s.role.value,
                    "branch_code": s.branch_code,
                    "bank_code": s.bank_code,
                }
            ),
            media_type="application/json",
        )

    def to_login(request: Request) -> Response:
        """To the login form, saying so when this browser's session has ended (logged out elsewhere, idle,
        past its absolute end, or revoked): the reader learns why the page asks again."""
        ended = "&ended=1" if session_id_of(request) else ""
        return RedirectResponse(f"/login?next={request.url.path}{ended}", status_code=303)

    def login_form(request: Request) -> Response:
        if user_of(request) is not None:
            return RedirectResponse("/", status_code=303)
        notice = text(request, SESSION_ENDED) if request.query_params.get("ended") == "1" else None
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")), notice=notice)

    def refused(request: Request, next_url: str, refusal: Refusal) -> Response:
        lang = lang_of(request)
        if refusal.locked:
            minutes = int(refusal.retry_after_s // 60) + 1
            message = lang.ngettext(
                "Too many failed logins. Try again in %(minutes)s minute.",
                "Too many failed logins. Try again in %(minutes)s minutes.",
                minutes,
                DOMAIN,
            ) % {"minutes": minutes}
        else:
            message = lang.gettext(LOGIN_BUSY, DOMAIN)
        headers = {"Retry-After": refusal.retry_after_header}
        return render(request, "login.html", 429, headers=headers, next=next_url, error=message, user=None)

    async def login(request: Request) -> Response:
        form = await form_of(request)
        next_url = _safe_next(form.get("next"))
        nonce = request.cookies.get(LOGIN_COOKIE)
        expected = login_csrf_token(config.secret_key, nonce) if nonce else None
        if not csrf_valid(expected, form.get(CSRF_FIELD)):
            return render(
                request,
                "login.html",
                403,
                next=next_url,
                error=text(request, FORM_EXPIRED),
                user=None,
            )
        username, password = form.get("username", "").strip(), form.get("password", "")
        address = request.client.host if request.client else "?"
        refusal = throttle.admit(username, address)
        if refusal is not None:
            return refused(request, next_url, refusal)
        user = None
        try:
            user = await run_in_threadpool(authenticate, config.users, username, password)
        finally:
            throttle.done(username, address, succeeded=user is not None)
        if user is None:
            return render(
                request, "login.html", 401, next=next_url, error=text(request, WRONG_LOGIN), user=None
            )

        def open_new() -> str:
            # A new session id after login (no fixation); the session this browser held before ends.
            with db.connection() as conn:
                return sessions.open_session(conn, user.username, address, policy, session_id_of(request))

        session_id = await run_in_threadpool(open_new)
        response = RedirectResponse(next_url, status_code=303)
        set_cookie(request, response, SESSION_COOKIE, session_id)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    async def logout(request: Request) -> Response:
        form = await form_of(request)
        session_id = session_id_of(request)
        expected = session_csrf_token(config.secret_key, session_id) if session_id else None
        if not csrf_valid(expected, form.get(CSRF_FIELD)):
            return error(request, 403, text(request, FORM_EXPIRED))

        def end() -> None:
            with db.connection() as conn:
                sessions.end_session(conn, session_id or "", by="logout")

        await run_in_threadpool(end)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    async def choose_language(request: Request) -> Response:
        """The language switch: the reader's choice, kept in a cookie, wins over the browser's."""
        form = await form_of(request)
        session_id = session_id_of(request)
        user = await run_in_threadpool(user_of, request) if session_id else None
        expected: str | None
        if user is not None and session_id:
            expected = session_csrf_token(config.secret_key, session_id)
        else:
            nonce = request.cookies.get(LOGIN_COOKIE)
            expected = login_csrf_token(config.secret_key, nonce) if nonce else None
        if not csrf_valid(expected, form.get(CSRF_FIELD)):
            return error(request, 403, text(request, FORM_EXPIRED))
        chosen = form.get("lang", "")
        if chosen not in i18n.SUPPORTED:
            return error(request, 400, text(request, ERRORS[400][1]))
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        response.set_cookie(
            language.LANG_COOKIE,
            chosen,
            max_age=language.LANG_COOKIE_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
        )
        return response

    def error(request: Request, status: int, message: str | None = None, **context: Any) -> HTMLResponse:
        """An error page in the reader's language."""
        title, default_message = ERRORS.get(status, ERRORS[500])
        return render(
            request,
            "error.html",
            status,
            title=text(request, title),
            message=message if message is not None else text(request, default_message),
            **context,
        )

    def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own answers (no such route, wrong method) as pages, or JSON under /api."""
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if request.url.path.startswith("/api/"):
            english = ERRORS.get(status, ERRORS[500])[0].lower()
            return Response(dumps({"error": english}), status, media_type="application/json")
        return error(request, status, user=None)

    def server_error(request: Request, exc: Exception) -> Response:
        # Nothing of the exception is shown; no database access either (it may be what failed).
        return error(request, 500, user=None)

    def too_large_page(scope: Any) -> Response:
        # Rendered before the body is read, without a session lookup (nothing of the request is trusted).
        return error(Request(scope), 413, user=None)

    def metrics(request: Request) -> Response:
        bearer = request.headers.get("authorization", "")
        token_ok = config.metrics_token is not None and secrets.compare_digest(
            bearer.encode(), f"Bearer {config.metrics_token}".encode()
        )
        user = user_of(request)
        if not token_ok and (user is None or user.scope.role.value != "bureau"):
            return Response("login or metrics token required\n", 401, media_type="text/plain")
        with db.connection() as conn:
            body = metrics_text(conn)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    routes = [
        Route("/", page("overview.html", reads.overview)),
        Route("/reasons", page("reasons.html", reads.reasons)),
        Route("/backlog", page("backlog.html", partial(reads.backlog, reminder_days=config.reminder_days))),
        Route("/runs", page("runs.html", reads.runs)),
        Route("/dead-letters", page("dead_letters.html", reads.dead_letters)),
        Route("/applications", lookup),
        Route("/applications/{application_id}", lookup),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/language", choose_language, methods=["POST"]),
        Route("/api/me", api_me),
        Route("/api/funnel", api(reads.overview)),
        Route("/api/reasons", api(reads.reasons)),
        Route("/api/backlog", api(partial(reads.backlog, reminder_days=config.reminder_days))),
        Route("/api/runs", api(reads.runs)),
        Route("/api/dead-letters", api(reads.dead_letters)),
        Route("/api/applications/{application_id}", api_application),
        Route("/metrics", metrics),
        Route("/favicon.ico", lambda _: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    # Outermost first: the client is known before anything else; the headers go on every answer, the 413
    # of an oversized body included.
    middleware = [
        Middleware(ForwardedFor, trusted=parse_networks(config.trusted_proxies)),
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, max_bytes=config.max_body_bytes, page=too_large_page),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        compactor = threading.Thread(target=compact_now_and_then, name="dashboard-compact", daemon=True)
        compactor.start()
        yield
        stop.set()
        compactor.join(5)
        db.close()

    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, 500: server_error},
    )
    app.state.throttle = throttle  # for tests: how many keys and checks the throttle holds
    return app


async def form_of(request: Request) -> dict[str, str]:
    """The form fields of a POST (its size is bounded by BodyLimit before it is read)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=20).items()}


def record_read(
    conn: psycopg.Connection[Any], user: User, application_id: str, via: str, shown: bool
) -> None:
    """Article 6: who looked at which application, one insert per lookup. The id is recorded when the
    application was shown; a lookup that showed nothing is recorded without what was typed (it may be an ID
    number typed into the wrong box)."""
    record_action(
        conn,
        actor=dashboard_actor(user.username),
        action="application.read",
        entity="application",
        entity_id=application_id if shown else NOT_SHOWN,
        detail={"via": via, "shown": shown},
    )


def request_language_code(request: Request, configured: str) -> str:
    """The request's language code, decided once and kept on the request."""
    state = request.scope.setdefault("state", {})
    if "language" not in state:
        state["language"] = language.request_language(
            request.cookies, request.headers.get("accept-language"), configured
        )
    code: str = state["language"]
    return code


def _safe_next(value: str | None) -> str:
    """Only a path on this site may follow a login (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"
