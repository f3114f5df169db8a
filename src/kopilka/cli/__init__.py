"""The ``kopilka`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from kopilka.cli.common import ensure_schema, print_problem
from kopilka.cli.security import keys_app, register_apikey_commands, security_app

app = typer.Typer(help="Kopilka: a self-hosted loyalty platform.", no_args_is_help=True)
program_app = typer.Typer(help="The programme file.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
user_app = typer.Typer(help="Console users.", no_args_is_help=True)
app.add_typer(program_app, name="program")
app.add_typer(apikey_app, name="apikey")
app.add_typer(user_app, name="user")
ledger_app = typer.Typer(help="The points ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
app.add_typer(keys_app, name="keys")
app.add_typer(security_app, name="security")
register_apikey_commands(apikey_app)

# Commands that run no domain code: started without importing (and wiring) every package.
UNWIRED = frozenset({"migrate", "serve"})


@app.callback()
def _wire(ctx: typer.Context) -> None:
    """Fill the packages' registries (jobs, hooks, the outbox's consumer) before a command
    runs domain code (``kopilka.wiring``)."""
    if ctx.invoked_subcommand in UNWIRED:
        return
    from kopilka.wiring import wire

    wire()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (idempotent)."""
    from kopilka.core.db import get_db
    from kopilka.core.migrate import head_revision, upgrade

    upgrade(get_db().engine)
    typer.echo(f"schema at {head_revision()}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """The HTTP server: API under /api/v1, health under /health."""
    import uvicorn

    ensure_schema()
    uvicorn.run(
        "kopilka.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
        proxy_headers=True,
    )


@program_app.command("apply")
def program_apply(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Load a programme file (YAML) idempotently."""
    from kopilka.core.db import get_db
    from kopilka.core.errors import Problem
    from kopilka.program.service import apply_program, parse_program

    ensure_schema()
    try:
        spec = parse_program(file.read_text(encoding="utf-8"))
        with get_db().session() as session:
            result = apply_program(session, spec, actor="cli")
            session.commit()
    except Problem as exc:
        print_problem(exc)
        raise typer.Exit(2) from exc
    state = "applied" if result.changed else "unchanged"
    typer.echo(f"programme {state}: version {result.version} ({result.digest[:12]})")


@program_app.command("export")
def program_export() -> None:
    """Print the programme in force as YAML."""
    from kopilka.core.db import get_db
    from kopilka.core.errors import Problem
    from kopilka.program.service import export_program

    ensure_schema()
    try:
        with get_db().session() as session:
            sys.stdout.write(export_program(session))
    except Problem as exc:
        print_problem(exc)
        raise typer.Exit(2) from exc


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    role: Annotated[str, typer.Option(help="admin, manager, analyst, cashier or partner.")],
    store: Annotated[str | None, typer.Option(help="Store code (cashier keys).")] = None,
    partner: Annotated[str | None, typer.Option(help="Partner code (partner keys).")] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    from kopilka.apikeys.service import create_key
    from kopilka.core.db import get_db
    from kopilka.core.errors import Problem

    ensure_schema()
    try:
        with get_db().session() as session:
            row, key = create_key(session, name, role, store, partner, created_by="system:cli")
            session.commit()
    except Problem as exc:
        print_problem(exc)
        raise typer.Exit(2) from exc
    typer.echo(f"API key {row.id} ({role}) created; it is shown only once:")
    typer.echo(key)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    role: Annotated[str, typer.Option(help="admin, manager, analyst or support.")],
) -> None:
    """Create a console user; the password is read from standard input."""
    from kopilka.core.db import get_db
    from kopilka.core.errors import Problem
    from kopilka.users.service import create_user

    ensure_schema()
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        with get_db().session() as session:
            user = create_user(session, email, role, password)
            session.commit()
    except Problem as exc:
        print_problem(exc)
        raise typer.Exit(2) from exc
    typer.echo(f"console user {user.email} ({user.role}) created")


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    members: Annotated[int, typer.Option(min=0, max=100_000)] = 300,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Seed only.")] = False,
) -> None:
    """A first look: embedded database, demo programme and members, server started."""
    from kopilka.demo.seed import run_demo

    run_demo(host=host, port=port, members=members, serve=not no_serve)


@ledger_app.command("verify")
def ledger_verify(
    all_checks: Annotated[
        bool, typer.Option("--all", help="Run every check, not only up to the first breach.")
    ] = False,
) -> None:
    """Check every ledger invariant; exit status 0 only if all hold."""
    from kopilka.core.db import get_db
    from kopilka.ledger.verify import CHECKS, EXTRA_CHECKS, verify

    ensure_schema()
    with get_db().session() as session:
        breaches = verify(session, stop_at_first=not all_checks)
    if not breaches:
        typer.echo(f"ledger OK: {len(CHECKS) + len(EXTRA_CHECKS)} checks passed")
        return
    for b in breaches:
        typer.echo(f"BREACH {b.check}: {b.description}", err=True)
        for ex in b.examples:
            typer.echo(f"  {ex}", err=True)
    raise typer.Exit(1)


@ledger_app.command("expire")
def ledger_expire() -> None:
    """Write the expiry entries of lots that have expired (the worker does this too)."""
    from kopilka.core.db import get_db
    from kopilka.ledger.service import expire_due

    ensure_schema()
    total = 0
    with get_db().session() as session:
        while True:
            n = expire_due(session, limit=500)
            session.commit()
            total += n
            if n == 0:
                break
    typer.echo(f"{total} expiry entries written")


reports_app = typer.Typer(help="Reports and their rollups.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")


@reports_app.command("rollup")
def reports_rollup(
    full: Annotated[bool, typer.Option("--full", help="Rebuild every rollup table.")] = False,
    settle_seconds: Annotated[
        int | None, typer.Option(help="Leave ledger entries younger than this for later.")
    ] = None,
) -> None:
    """Bring the dashboards' rollup tables up to date (the worker does it every 5 min)."""
    from kopilka.reports.jobs import run_rollup

    ensure_schema()
    result = run_rollup(full=full, settle_seconds=settle_seconds)
    typer.echo(
        f"rollup {'rebuilt' if full else 'updated'}: {result.days} days, "
        f"{result.members} members added, {len(result.months)} cohort months"
    )


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="One batch, then exit.")] = False,
    batch: Annotated[int, typer.Option(min=1, max=1000, help="Deliveries per batch.")] = 50,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=128, help="Deliveries sent at once.")
    ] = None,
) -> None:
    """Deliver the outbox (webhooks) and run the scheduled jobs, until SIGTERM."""
    from kopilka.core.config import get_settings
    from kopilka.core.logging import configure_logging
    from kopilka.worker.loop import main as run_worker

    ensure_schema()
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    n = run_worker(once=once, batch=batch, concurrency=concurrency)
    if once:
        typer.echo(f"{n} deliveries attempted")


def main() -> None:
    try:
        app()
    except Exception as exc:  # a clean message instead of a traceback for config errors
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            typer.echo(f"configuration error: {exc}", err=True)
            raise SystemExit(2) from exc
        raise
