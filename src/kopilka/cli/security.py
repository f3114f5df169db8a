"""Command-line parts of security: ``kopilka keys …``, ``kopilka apikey list|revoke|rotate``
and ``kopilka security matrix``. Registered on the main command in ``kopilka/cli/__init__.py``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from kopilka.cli.common import ensure_schema, print_problem

keys_app = typer.Typer(help="Keys of the personal data at rest.", no_args_is_help=True)
security_app = typer.Typer(help="Security reports.", no_args_is_help=True)

CLI_ACTOR = "system:cli"
MATRIX_BEGIN = "<!-- permission-matrix:begin -->"
MATRIX_END = "<!-- permission-matrix:end -->"


def _schema() -> None:
    ensure_schema()


def _problem_exit(exc: Exception) -> typer.Exit:
    print_problem(exc)
    return typer.Exit(2)


@keys_app.command("generate")
def keys_generate(
    key_id: Annotated[str, typer.Option("--id", help="Id of the new data key.")] = "k1",
) -> None:
    """Print a fresh data key and index key, ready for the environment."""
    from kopilka.security.crypto import generate_key

    typer.echo(f"KOPILKA_DATA_KEYS={key_id}:{generate_key()}")
    typer.echo(f"KOPILKA_INDEX_KEY={generate_key()}")


@keys_app.command("status")
def keys_status() -> None:
    """How many stored values each data key encrypted, per table."""
    from kopilka.core.db import get_db
    from kopilka.security.crypto import key_ring
    from kopilka.security.rotation import key_usage

    _schema()
    ring = key_ring()
    note = " (development key: not for real data)" if ring.development else ""
    typer.echo(f"active key: {ring.active}{note}; ring: {', '.join(ring.keys)}")
    for table, usage in key_usage(get_db().engine).items():
        counts = ", ".join(f"{k}={n}" for k, n in sorted(usage.items())) or "no values"
        typer.echo(f"{table}: {counts}")


@keys_app.command("rotate-data")
def keys_rotate_data(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = 500,
    force: Annotated[
        bool, typer.Option("--all", help="Re-encrypt every value, not only old keys'.")
    ] = False,
) -> None:
    """Re-encrypt personal data with the first key of KOPILKA_DATA_KEYS and recompute
    the blind indexes with KOPILKA_INDEX_KEY."""
    from kopilka.audit.service import record
    from kopilka.core.db import get_db
    from kopilka.security.crypto import key_ring
    from kopilka.security.rotation import rotate

    _schema()
    db = get_db()
    report = rotate(db.engine, batch=batch, force=force)
    active = key_ring().active
    for table in sorted(report.rows):
        typer.echo(
            f"{table}: {report.rows[table]} rows, {report.reencrypted[table]} values "
            f"re-encrypted with key {active}, {report.reindexed[table]} indexes recomputed"
        )
    with db.session() as session:
        record(
            session,
            CLI_ACTOR,
            "keys.rotate_data",
            "data_keys",
            active,
            details={
                "rows": dict(report.rows),
                "reencrypted": dict(report.reencrypted),
                "reindexed": dict(report.reindexed),
            },
        )
        session.commit()


def register_apikey_commands(apikey_app: typer.Typer) -> None:
    """Add ``list``, ``revoke`` and ``rotate`` to ``kopilka apikey``."""

    @apikey_app.command("list")
    def apikey_list(
        all_keys: Annotated[
            bool, typer.Option("--all", help="Also revoked and expired keys.")
        ] = False,
    ) -> None:
        """The keys with their role, scope, status, expiry and last use (never secrets)."""
        from kopilka.apikeys.service import key_json, list_keys
        from kopilka.core.db import get_db

        _schema()
        cursor: str | None = None
        with get_db().session() as session:
            while True:
                rows, cursor = list_keys(
                    session, include_inactive=all_keys, cursor=cursor, limit=200
                )
                for row in rows:
                    k = key_json(row)
                    scope = k["store"] or k["partner"] or "-"
                    typer.echo(
                        f"{k['id']}  {k['hint']:<22} {k['role']:<8} {scope:<10} "
                        f"{k['status']:<8} expires={k['expires_at'] or '-'} "
                        f"last_used={k['last_used_at'] or '-'}  {k['name']}"
                    )
                if cursor is None:
                    break

    @apikey_app.command("revoke")
    def apikey_revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="Key id.")]) -> None:
        """Revoke a key (this process at once; servers within the key cache time)."""
        from kopilka.apikeys.service import revoke_key
        from kopilka.core.db import get_db
        from kopilka.core.errors import Problem

        _schema()
        try:
            with get_db().session() as session:
                row = revoke_key(session, key_id, CLI_ACTOR)
                session.commit()
        except Problem as exc:
            raise _problem_exit(exc) from exc
        typer.echo(f"API key {row.id} revoked")

    @apikey_app.command("rotate")
    def apikey_rotate(
        key_id: Annotated[uuid.UUID, typer.Argument(help="Key id.")],
        grace: Annotated[
            int,
            typer.Option(min=0, help="Seconds the old key keeps working (default one day)."),
        ] = 24 * 3600,
    ) -> None:
        """Issue a successor (printed once, alone on the last line); the old key keeps
        working for the grace period."""
        from kopilka.apikeys.service import rotate_key
        from kopilka.core.db import get_db
        from kopilka.core.errors import Problem

        _schema()
        try:
            with get_db().session() as session:
                row, key = rotate_key(session, key_id, grace, CLI_ACTOR)
                session.commit()
        except Problem as exc:
            raise _problem_exit(exc) from exc
        typer.echo(f"API key {row.id} replaces {key_id}, which works {grace} s more:")
        typer.echo(key)


def current_matrix() -> str:
    from kopilka.main import create_app
    from kopilka.security.policy import matrix_markdown

    return matrix_markdown(create_app().routes)


def write_matrix(doc: Path) -> bool:
    """Put the current matrix between the markers of ``doc``; True if it changed."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.index(MATRIX_BEGIN), text.index(MATRIX_END)
    new = text[: start + len(MATRIX_BEGIN)] + "\n" + current_matrix() + text[end:]
    if new == text:
        return False
    doc.write_text(new, encoding="utf-8")
    return True


@security_app.command("matrix")
def security_matrix(
    write: Annotated[
        Path | None,
        typer.Option(help="Update the matrix between the markers of this file."),
    ] = None,
) -> None:
    """Print the permission matrix (route × role) read from the routes themselves."""
    if write is None:
        typer.echo(current_matrix(), nl=False)
        return
    changed = write_matrix(write)
    typer.echo(f"{write}: {'updated' if changed else 'already current'}")
