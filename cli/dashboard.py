"""`issuance dashboard`: serve the bureau dashboard; `add-user` and `hash-password` for the users file;
`sessions list|revoke` for the sessions of the dashboard's users."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import OperatorOption, command, load_settings, operator_identity, print_json
from issuance.errors import ConfigurationError, InputError
from issuance.settings import Settings

if TYPE_CHECKING:
    from dashboard.sessions import SessionPolicy

SECRET_FILE = "dashboard-secret"

dashboard_app = typer.Typer(
    help="The bureau dashboard (login required; users from ISSUANCE_DASHBOARD_USERS).",
    invoke_without_command=True,
    no_args_is_help=False,
)


def database_url(settings: Settings) -> str:
    """The configured database, else the embedded one (the dashboard needs no broker)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    from issuance.services.embedded import running
    from issuance.services.endpoints import resolve

    url = running(settings.state_dir).database_url
    return url if url is not None else resolve(settings).database_url


def session_secret(settings: Settings) -> str:
    """ISSUANCE_DASHBOARD_SECRET, else a secret kept in state_dir so that sessions survive a restart."""
    configured = os.environ.get("ISSUANCE_DASHBOARD_SECRET")
    if configured:
        return configured
    path = Path(settings.state_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dashboard_app.callback()
@command
def dashboard(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    users: Annotated[
        Path | None,
        typer.Option(
            envvar="ISSUANCE_DASHBOARD_USERS",
            help="JSON users file (`issuance dashboard add-user`); required unless services are embedded.",
        ),
    ] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(help="Serve over TLS with this certificate.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="Private key of the TLS certificate.")] = None,
) -> None:
    """Serve the dashboard: funnel, rejection reasons, backlog, nightly runs, dead letters, lookup."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from dashboard.app import DashboardConfig, create_app
    from dashboard.server import server_config
    from dashboard.users import USERS_FILE, ensure_demo_users, load_users
    from issuance.crypto import Vault
    from issuance.store.db import connect

    settings = load_settings(ctx)
    if users is None and not settings.development_keys_allowed:
        # Demo users have known, printed passwords: never beside a real database (fail closed).
        raise ConfigurationError(
            "the dashboard needs a users file when a database or broker is configured: set"
            " ISSUANCE_DASHBOARD_USERS (or --users) to a file made with"
            " `issuance dashboard add-user --users FILE --username NAME --role bureau`"
        )
    conninfo = database_url(settings)
    with connect(conninfo, autocommit=True, application_name="issuance-dashboard") as conn:
        if conn.execute("SELECT to_regclass('dashboard_sessions')").fetchone() == (None,):
            raise ConfigurationError("the database schema is not up to date: run `issuance setup` first")
        first = conn.execute(
            "SELECT branch_code, bank_code FROM branches ORDER BY branch_code LIMIT 1"
        ).fetchone()
    demo = []
    if users is None:
        demo = ensure_demo_users(
            Path(settings.state_dir), first[0] if first else None, first[1] if first else None
        )
        users = Path(settings.state_dir) / USERS_FILE
    tls = ssl_certfile is not None
    config = DashboardConfig(
        database_url=conninfo,
        users=load_users(users),
        vault=Vault.from_settings(settings),
        secret_key=session_secret(settings),
        https=tls,
        metrics_token=os.environ.get("ISSUANCE_DASHBOARD_METRICS_TOKEN"),
        timezone=os.environ.get("ISSUANCE_DASHBOARD_TIMEZONE", "Asia/Shanghai"),
        language=settings.language,
        reminder_days=settings.collection_reminder_days,
        trusted_proxies=settings.dashboard_trusted_proxies,
        max_body_bytes=settings.dashboard_max_body_bytes,
        session_idle_s=settings.dashboard_session_idle_minutes * 60,
        session_absolute_s=settings.dashboard_session_hours * 3600,
    )
    scheme = "https" if tls else "http"
    typer.echo(f"dashboard: {scheme}://{host}:{port}/")
    for login in demo:
        typer.echo(f"  demo login ({login.sees}): {login.username} / {login.password}")
    uvicorn.Server(
        server_config(
            create_app(config), host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
        )
    ).run()


@dashboard_app.command("add-user")
@command
def add_user_command(
    users: Annotated[
        Path, typer.Option(envvar="ISSUANCE_DASHBOARD_USERS", help="The users file (created when missing).")
    ],
    username: Annotated[str, typer.Option(help="The login name.")],
    role: Annotated[str, typer.Option(help="bureau (everything), branch or bank (its own applications).")],
    branch_code: Annotated[str | None, typer.Option(help="The branch of a branch user.")] = None,
    bank_code: Annotated[str | None, typer.Option(help="The bank of a bank user.")] = None,
    replace: Annotated[bool, typer.Option(help="Replace the user's entry (a new password or role).")] = False,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from the first line of stdin instead of a prompt.")
    ] = False,
) -> None:
    """Add a dashboard user to the users file with an argon2id hash of the password (asked without echo,
    twice; never printed or stored in clear). The file is written readable by its owner only."""
    import sys

    from dashboard.users import MIN_PASSWORD_CHARS, add_user
    from issuance.store.report_queries import Role

    try:
        chosen = Role(role)
    except ValueError as exc:
        raise InputError(f"--role: one of {', '.join(r.value for r in Role)}") from exc
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(
            f"Password (at least {MIN_PASSWORD_CHARS} characters)", hide_input=True, confirmation_prompt=True
        )
    try:
        replaced = add_user(
            users,
            username,
            password,
            chosen,
            branch_code=branch_code,
            bank_code=bank_code,
            replace=replace,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    typer.echo(f"{'replaced' if replaced else 'added'} {username.strip()} ({chosen.value}) in {users}")


@dashboard_app.command("hash-password")
@command
def hash_password_command(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print the argon2 hash of a password, for the password_hash field of the users file."""
    from dashboard.users import hash_password

    typer.echo(hash_password(password))


sessions_app = typer.Typer(help="Sessions of the dashboard's users: list them, revoke them (audited).")
dashboard_app.add_typer(sessions_app, name="sessions")


def _policy(settings: Settings) -> SessionPolicy:
    from dashboard.sessions import SessionPolicy

    return SessionPolicy(
        settings.dashboard_session_idle_minutes * 60.0, settings.dashboard_session_hours * 3600.0
    )


@sessions_app.command("list")
@command
def sessions_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's sessions.")] = None,
    include_ended: Annotated[
        bool, typer.Option("--all", help="Also the revoked, idle and expired ones (kept 30 days).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """The live sessions (newest first): id, user, address, login, last request, end."""
    from dashboard.sessions import list_sessions
    from issuance.store.db import connect

    settings = load_settings(ctx)
    policy = _policy(settings)
    with connect(database_url(settings), autocommit=True, application_name="issuance-dashboard") as conn:
        rows = list_sessions(conn, policy, username=user, include_ended=include_ended)
    if as_json:
        print_json({"sessions": [r.as_dict() for r in rows]})
        return
    if not rows:
        typer.echo("no sessions")
    for r in rows:
        typer.echo(
            f"{r.id:>8}  {r.state:<8} {r.username:<20} {r.address:<16} login {r.created_at:%Y-%m-%d %H:%M}"
            f"  last {r.last_seen_at:%Y-%m-%d %H:%M}  ends {r.expires_at:%Y-%m-%d %H:%M}"
            + (f"  revoked by {r.revoked_by}" if r.revoked_by else "")
        )


@sessions_app.command("revoke")
@command
def sessions_revoke(
    ctx: typer.Context,
    operator: OperatorOption,
    ids: Annotated[list[int] | None, typer.Argument(help="Session ids (from `sessions list`).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Every session of this user.")] = None,
) -> None:
    """End sessions now (their browser's next request goes to the login page); audited with --operator."""
    from dashboard.sessions import revoke
    from issuance.store.db import connect

    actor = operator_identity(operator)
    if not ids and user is None:
        raise InputError("name the sessions: one or more ids, or --user NAME")
    settings = load_settings(ctx)
    with connect(database_url(settings), application_name="issuance-dashboard") as conn:
        revoked = revoke(conn, operator=actor, ids=ids or (), username=user)
    typer.echo(
        f"revoked {len(revoked)} session(s){': ' + ', '.join(map(str, revoked)) if revoked else ''};"
        f" recorded in the audit log as {actor}"
    )


def register(app: typer.Typer) -> None:
    """Add the `dashboard` command."""
    app.add_typer(dashboard_app, name="dashboard")
