"""The operator CLI (``reapi``). Every failure is one human line and a non-zero exit.

Output contract relied on by scripts and docs: ``keys create`` prints the new secret alone on
the last line of stdout.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError, OperationalError

from reapi.config import ConfigError, load_config
from reapi.money import MoneyFormatError
from reapi.services.keys import AccountError, KeyService
from reapi.settings import Settings
from reapi.storage import migrate
from reapi.storage.db import Database, DatabaseURLError, redact

T = TypeVar("T")

_OPERATOR_ERRORS = (AccountError, ConfigError, DatabaseURLError, MoneyFormatError)


class _Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._migrated = False

    def migrate(self) -> None:
        if not self._migrated:
            try:
                migrate.upgrade(self.settings.database_url)
            except _OPERATOR_ERRORS as exc:
                raise click.ClickException(str(exc)) from None
            except (OperationalError, DBAPIError, OSError) as exc:
                raise click.ClickException(
                    f"cannot open the database {redact(self.settings.database_url)}: "
                    f"{_first_line(exc)}"
                ) from None
            self._migrated = True

    def run(self, work: Callable[[KeyService], Awaitable[T]]) -> T:
        self.migrate()

        async def main() -> T:
            db = Database(self.settings.database_url)
            try:
                return await work(KeyService(db))
            finally:
                await db.dispose()

        try:
            return asyncio.run(main())
        except _OPERATOR_ERRORS as exc:
            raise click.ClickException(str(exc)) from None
        except (OperationalError, DBAPIError, OSError) as exc:
            raise click.ClickException(f"database error: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


@click.group()
@click.version_option(package_name="reapi")
@click.pass_context
def main(ctx: click.Context) -> None:
    """reapi: an AI API gateway. The database comes from REAPI_DATABASE_URL
    (default: sqlite:///reapi.db in the working directory)."""
    try:
        ctx.obj = _Context(Settings.from_env())
    except ValueError as exc:
        raise click.ClickException(f"bad environment setting: {exc}") from None


@main.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.pass_obj
def serve(obj: _Context, config_path: Path | None, host: str, port: int, workers: int) -> None:
    """Apply migrations and run the gateway."""
    import os

    import uvicorn

    settings = obj.settings
    if config_path is not None:
        settings = Settings.from_env(settings.environ, config_path=config_path)
    try:
        load_config(settings.config_path, settings.environ)  # fail here, not in a worker
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    obj.settings = settings
    obj.migrate()
    _configure_logging(settings.log_level)
    if settings.config_path is not None:
        # Workers build their own app from the environment: hand the config path down.
        os.environ["REAPI_CONFIG"] = str(settings.config_path.resolve())
    os.environ["REAPI_WORKERS"] = str(workers)
    uvicorn.run(
        "reapi.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=30,
    )


@main.command("migrate")
@click.pass_obj
def migrate_command(obj: _Context) -> None:
    """Apply database migrations (serve does this too)."""
    obj.migrate()
    click.echo(f"database {redact(obj.settings.database_url)} is up to date")


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
@click.option("--group", "groups", multiple=True, help="A group the user may use (repeatable).")
@click.pass_obj
def users_create(obj: _Context, name: str, groups: tuple[str, ...]) -> None:
    """Create a user allowed to use GROUPs (default: the default group)."""
    user = obj.run(lambda keys: keys.create_user(name, groups or ("default",)))
    click.echo(f"created user {user.name} (groups: {', '.join(user.groups)})")


@users.command("list")
@click.pass_obj
def users_list(obj: _Context) -> None:
    async def work(keys: KeyService) -> list[Any]:
        return list(await keys.list_users())

    for user in obj.run(work):
        click.echo(
            f"{user.name}\tgroups={','.join(user.groups)}\tcreated={user.created_at:%Y-%m-%d}"
        )


@main.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--user", "user_name", required=True)
@click.option("--name", "label", default="", help="A label to recognise the key by.")
@click.option("--group", default=None, help="The group used when a request names none.")
@click.option(
    "--workspace", type=click.Choice(["chat", "tasks"]), default="chat", show_default=True
)
@click.pass_obj
def keys_create(
    obj: _Context, user_name: str, label: str, group: str | None, workspace: str
) -> None:
    """Create a key; its secret is printed once, alone on the last line."""
    new = obj.run(
        lambda keys: keys.create_key(user_name, label=label, group=group, workspace=workspace)
    )
    click.echo(
        f"created key {new.key.id} for {user_name} ({workspace}); store it now, it is shown once:",
        err=True,
    )
    click.echo(new.secret)


@keys.command("list")
@click.option("--user", "user_name", required=True)
@click.pass_obj
def keys_list(obj: _Context, user_name: str) -> None:
    for key in obj.run(lambda keys: keys.list_keys(user_name)):
        state = "revoked" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        click.echo(
            f"{key.id}\t{key.hint}\t{key.workspace}\t{state}\tname={key.name or '-'}\t"
            f"group={key.default_group or '-'}\tcreated={key.created_at:%Y-%m-%d %H:%M}\t"
            f"last_used={used}"
        )


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def keys_revoke(obj: _Context, key_id: str) -> None:
    key = obj.run(lambda keys: keys.revoke_key(key_id))
    click.echo(f"revoked key {key.id}")


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")


if __name__ == "__main__":
    main()
