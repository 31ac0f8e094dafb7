"""`issuance dashboard`: serve the bureau dashboard; `issuance dashboard hash-password` for the users file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from cli.common import command, load_settings
from issuance.errors import ConfigurationError
from issuance.settings import Settings

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
            envvar="ISSUANCE_DASHBOARD_USERS", help="JSON users file; default: generated demo users."
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
    from dashboard.users import ensure_demo_users, load_users
    from issuance.crypto import Vault
    from issuance.store.db import connect

    settings = load_settings(ctx)
    conninfo = database_url(settings)
    with connect(conninfo, autocommit=True, application_name="issuance-dashboard") as conn:
        if conn.execute("SELECT to_regclass('dashboard_state_counts')").fetchone() == (None,):
            raise ConfigurationError("the database schema is not up to date: run `issuance setup` first")
        first = conn.execute(
            "SELECT branch_code, bank_code FROM branches ORDER BY branch_code LIMIT 1"
        ).fetchone()
    demo = []
    if users is None:
        demo = ensure_demo_users(
            Path(settings.state_dir), first[0] if first else None, first[1] if first else None
        )
        users = Path(settings.state_dir) / "dashboard-users.json"
    tls = ssl_certfile is not None
    config = DashboardConfig(
        database_url=conninfo,
        users=load_users(users),
        vault=Vault.from_settings(settings),
        secret_key=session_secret(settings),
        https=tls,
        metrics_token=os.environ.get("ISSUANCE_DASHBOARD_METRICS_TOKEN"),
        timezone=os.environ.get("ISSUANCE_DASHBOARD_TIMEZONE", "Asia/Shanghai"),
        reminder_days=settings.collection_reminder_days,
    )
    scheme = "https" if tls else "http"
    typer.echo(f"dashboard: {scheme}://{host}:{port}/")
    for login in demo:
        typer.echo(f"  demo login ({login.sees}): {login.username} / {login.password}")
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


@dashboard_app.command("hash-password")
@command
def hash_password_command(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Print the argon2 hash of a password, for the password_hash field of the users file."""
    from dashboard.users import hash_password

    typer.echo(hash_password(password))


def register(app: typer.Typer) -> None:
    """Add the `dashboard` command."""
    app.add_typer(dashboard_app, name="dashboard")
