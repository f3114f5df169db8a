"""What the commands of ``kopilka`` share: the schema check and the way errors are shown.

Like every command, these import the database and error modules when they run, so that
``kopilka --help`` starts without SQLAlchemy and FastAPI (0.3 s instead of 1.2 s)."""

from __future__ import annotations

import typer

from kopilka.core.config import get_settings


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def print_problem(exc: Exception) -> None:
    from kopilka.core.errors import Problem

    if isinstance(exc, Problem):
        typer.echo(f"error: {exc.code}: {exc.detail or ''}", err=True)
        for err in exc.errors or []:
            typer.echo(f"  {err.get('field')}: {err.get('message')}", err=True)
    else:
        typer.echo(f"error: {exc}", err=True)


def ensure_schema(auto: bool | None = None) -> None:
    """Stop with a clear message if the schema is behind (or migrate, on the embedded DB)."""
    from kopilka.core.db import get_db
    from kopilka.core.migrate import is_current, upgrade

    settings = get_settings()
    db = get_db()
    if is_current(db.engine):
        return
    if auto if auto is not None else settings.should_auto_migrate:
        upgrade(db.engine)
        return
    raise fail(
        "The database schema is behind this version of Kopilka. Run `kopilka migrate` first.",
        code=3,
    )
