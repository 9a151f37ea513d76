"""The operator CLI (``reapi``). Every failure is one human line and a non-zero exit.

Output contract relied on by scripts and docs: ``keys create`` prints the new secret alone on
the last line of stdout.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from sqlalchemy.exc import DBAPIError, OperationalError

from reapi.config import ConfigError, load_config
from reapi.money import (
    MoneyFormatError,
    credits_to_units,
    format_credits,
    format_usd,
    usd_to_units,
)
from reapi.services.billing import BillingService, UsageQuery, usage_json
from reapi.services.keys import AccountError, KeyControls, KeyService
from reapi.services.limits import LocalLimiter
from reapi.settings import Settings
from reapi.storage import migrate
from reapi.storage.db import Database, DatabaseURLError, redact

T = TypeVar("T")

_OPERATOR_ERRORS = (AccountError, ConfigError, DatabaseURLError, MoneyFormatError)


@dataclass(frozen=True)
class _Services:
    keys: KeyService
    billing: BillingService


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

    def run(self, work: Callable[[_Services], Awaitable[T]]) -> T:
        self.migrate()

        async def main() -> T:
            db = Database(self.settings.database_url)
            try:
                billing = BillingService(
                    db,
                    LocalLimiter(),
                    node_id=self.settings.node_id,
                    owner_timeout=self.settings.hold_owner_timeout,
                    hold_max_age=self.settings.hold_max_age,
                )
                return await work(_Services(KeyService(db), billing))
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


def main() -> None:
    """Console entry point: operator mistakes raised anywhere become one line, exit 1."""
    try:
        cli()
    except _OPERATOR_ERRORS as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None


@click.group()
@click.version_option(package_name="reapi")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """reapi: an AI API gateway. The database comes from REAPI_DATABASE_URL
    (default: sqlite:///reapi.db in the working directory)."""
    try:
        ctx.obj = _Context(Settings.from_env())
    except ValueError as exc:
        raise click.ClickException(f"bad environment setting: {exc}") from None


def listen_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches ``serve`` at (a wildcard address is not one)."""
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - naming the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--demo",
    is_flag=True,
    help="Serve a small local model (needs reapi[local]), and local text-to-speech tasks when "
    "reapi[tts] is installed, with a demo user and keys; no config.",
)
@click.pass_obj
def serve(
    obj: _Context, config_path: Path | None, host: str, port: int, workers: int, demo: bool
) -> None:
    """Apply migrations and run the gateway."""
    import os

    import uvicorn

    from reapi import supervisor
    from reapi.http.edge import protocol_for
    from reapi.worker.runtime import load_catalog

    settings = obj.settings
    if config_path is not None:
        settings = Settings.from_env(settings.environ, config_path=config_path)
    if demo:
        if config_path is not None or workers != 1:
            raise click.ClickException("--demo takes no --config and runs one worker")
        _check_local_model()
        os.environ["REAPI_DEMO"] = "1"
    else:
        try:
            config = load_config(settings.config_path, settings.environ)  # fail here, not later
            load_catalog(config)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        if not config.channels:
            click.echo(
                "warning: no channels are configured, so no model can be served; "
                "pass --config FILE (see examples/reapi.yaml) or try --demo",
                err=True,
            )
    obj.settings = settings
    obj.migrate()
    if demo:
        from reapi.services.demo import banner, demo_config, demo_speaks, prepare_demo

        speech = demo_speaks(demo_config())
        if speech:
            _check_speech()
        access = obj.run(lambda s: prepare_demo(s.keys, s.billing, speech=speech))
        click.echo(banner(f"http://{host}:{port}", access))
    _configure_logging(settings.log_level)
    if settings.config_path is not None:
        # Workers build their own app from the environment: hand the config path down.
        os.environ["REAPI_CONFIG"] = str(settings.config_path.resolve())
    os.environ["REAPI_WORKERS"] = str(workers)
    os.environ["REAPI_LISTEN_URL"] = listen_url(host, port)
    server = uvicorn.Config(
        "reapi.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=protocol_for(settings),
        ws="none",
        access_log=False,
        # reapi logs each call itself; it is not behind a proxy that rewrites client addresses.
        proxy_headers=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=settings.shutdown_timeout,
        # How long a worker may take to answer the supervisor, starting up included (a worker
        # slower than this is killed, and on SIGHUP the reload stops): a busy host needs more
        # than uvicorn's 5 s.
        timeout_worker_healthcheck=30,
    )
    source = settings.config_path.resolve() if settings.config_path is not None else None
    supervisor.run(server, source, settings.environ)


@cli.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="YAML config file.")
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(1, 1024),
    help="Tasks worked on at once (default: tasks.workers from the config).",
)
@click.pass_obj
def worker(obj: _Context, config_path: Path | None, concurrency: int | None) -> None:
    """Run task workers without HTTP until SIGTERM or Ctrl-C (any number, on any machine
    sharing the database)."""
    from reapi.worker.runtime import run_workers

    settings = obj.settings
    if config_path is not None:
        settings = Settings.from_env(settings.environ, config_path=config_path)
    obj.settings = settings
    obj.migrate()
    _configure_logging(settings.log_level)
    try:
        asyncio.run(run_workers(settings, concurrency))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@cli.command("migrate")
@click.pass_obj
def migrate_command(obj: _Context) -> None:
    """Apply database migrations (serve does this too)."""
    obj.migrate()
    click.echo(f"database {redact(obj.settings.database_url)} is up to date")


@cli.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
@click.option("--group", "groups", multiple=True, help="A group the user may use (repeatable).")
@click.pass_obj
def users_create(obj: _Context, name: str, groups: tuple[str, ...]) -> None:
    """Create a user allowed to use GROUPs (default: the default group)."""
    user = obj.run(lambda s: s.keys.create_user(name, groups or ("default",)))
    click.echo(f"created user {user.name} (groups: {', '.join(user.groups)})")


@users.command("list")
@click.pass_obj
def users_list(obj: _Context) -> None:
    async def work(services: _Services) -> list[Any]:
        return list(await services.keys.list_users())

    for user in obj.run(work):
        click.echo(
            f"{user.name}\tgroups={','.join(user.groups)}\tcreated={user.created_at:%Y-%m-%d}"
        )


@cli.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--user", "user_name", required=True)
@click.option("--name", "label", default="", help="A label to recognise the key by.")
@click.option("--group", default=None, help="The group used when a request names none.")
@click.option(
    "--workspace", type=click.Choice(["chat", "tasks"]), default="chat", show_default=True
)
@click.option("--spend-limit", default=None, help="Most this key may ever spend, in USD.")
@click.option("--daily-limit", default=None, help="Most this key may spend per UTC day, in USD.")
@click.option("--expires", default=None, help="Expiry: an ISO date/time (UTC) or e.g. 30d, 12h.")
@click.option("--model", "models", multiple=True, help="Restrict the key to MODEL (repeatable).")
@click.pass_obj
def keys_create(
    obj: _Context,
    user_name: str,
    label: str,
    group: str | None,
    workspace: str,
    spend_limit: str | None,
    daily_limit: str | None,
    expires: str | None,
    models: tuple[str, ...],
) -> None:
    """Create a key; its secret is printed once, alone on the last line."""
    controls = KeyControls(
        spend_limit=usd_to_units(spend_limit) if spend_limit is not None else None,
        daily_spend_limit=usd_to_units(daily_limit) if daily_limit is not None else None,
        expires_at=_parse_expiry(expires) if expires is not None else None,
        allowed_models=list(models) or None,
    )
    new = obj.run(
        lambda s: s.keys.create_key(
            user_name, label=label, group=group, workspace=workspace, controls=controls
        )
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
    for key in obj.run(lambda s: s.keys.list_keys(user_name)):
        state = "revoked" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        limits = []
        if key.spend_limit is not None:
            limits.append(f"spent={format_usd(key.spent)}/{format_usd(key.spend_limit)}")
        if key.daily_spend_limit is not None:
            limits.append(f"daily_limit={format_usd(key.daily_spend_limit)}")
        if key.expires_at is not None:
            limits.append(f"expires={key.expires_at:%Y-%m-%d %H:%M}")
        if key.allowed_models is not None:
            limits.append(f"models={','.join(key.allowed_models)}")
        click.echo(
            f"{key.id}\t{key.hint}\t{key.workspace}\t{state}\tname={key.name or '-'}\t"
            f"group={key.default_group or '-'}\tcreated={key.created_at:%Y-%m-%d %H:%M}\t"
            f"last_used={used}" + "".join("\t" + item for item in limits)
        )


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def keys_revoke(obj: _Context, key_id: str) -> None:
    key = obj.run(lambda s: s.keys.revoke_key(key_id))
    click.echo(f"revoked key {key.id}")


@cli.command()
@click.argument("name")
@click.argument("amount")
@click.option("--note", default="", help="Why: shown in the ledger.")
@click.option(
    "--workspace", type=click.Choice(["chat", "tasks"]), default="chat", show_default=True
)
@click.pass_obj
def credit(obj: _Context, name: str, amount: str, note: str, workspace: str) -> None:
    """Add AMOUNT to NAME's balance: USD for chat, credits for tasks (1 credit = $0.001)."""
    units = usd_to_units(amount) if workspace == "chat" else credits_to_units(amount)
    if units <= 0:
        raise click.ClickException("the amount must be positive")
    balance = obj.run(lambda s: s.billing.credit(name, units, note=note, workspace=workspace))
    click.echo(f"credited {name}; balance is now {_money(balance, workspace)}")


@cli.command()
@click.argument("name")
@click.option(
    "--workspace", type=click.Choice(["chat", "tasks"]), default="chat", show_default=True
)
@click.pass_obj
def balance(obj: _Context, name: str, workspace: str) -> None:
    """Print NAME's balance (alone on the last line); held and available above it."""
    state = obj.run(lambda s: s.billing.balance(name, workspace))
    click.echo(f"held: {_money(state.held, workspace)}")
    click.echo(f"available: {_money(state.available, workspace)}")
    click.echo(_money(state.balance, workspace))


@cli.command()
@click.argument("name")
@click.option("--since", default=None, help="ISO date/time (UTC) of the oldest record.")
@click.option("--until", default=None, help="ISO date/time (UTC) after the newest record.")
@click.option("--model", default=None)
@click.option("--key", "key_id", default=None, help="Only this key id.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="A JSON array instead of a table.")
@click.pass_obj
def usage(
    obj: _Context,
    name: str,
    since: str | None,
    until: str | None,
    model: str | None,
    key_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List NAME's calls, newest first."""
    query = UsageQuery(
        since=_parse_time(since) if since else None,
        until=_parse_time(until) if until else None,
        model=model,
        key_id=key_id,
        limit=limit,
    )
    records = obj.run(lambda s: s.billing.usage(name, query))
    if as_json:
        click.echo(orjson.dumps([usage_json(r) for r in records], option=orjson.OPT_INDENT_2))
        return
    for record in records:
        item = usage_json(record)
        click.echo(
            f"{item['created_at']}  {item['request_id']}  {item['model'] or '-'}  "
            f"{item['group'] or '-'}  {item['status']} {item['outcome']}  "
            f"in={item['prompt_tokens']} out={item['completion_tokens']}  ${item['cost']}"
        )


@cli.group()
def ledger() -> None:
    """Check the books."""


@ledger.command("verify")
@click.pass_obj
def ledger_verify(obj: _Context) -> None:
    """Exit non-zero, explaining why, if any balance differs from its ledger, any hold is
    orphaned, or any call was charged twice."""
    problems = obj.run(lambda s: s.billing.verify())
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise SystemExit(1)
    click.echo("ledger ok: every balance equals the sum of its ledger; no orphaned holds")


def _check_local_model() -> None:
    """Fail in one line, before serving, if the local model cannot run."""
    from reapi.providers.llamacpp.errors import LocalModelUnavailable
    from reapi.providers.llamacpp.model import require_xllamacpp, resolve_model

    try:
        require_xllamacpp()
        resolve_model(None)
    except LocalModelUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _check_speech() -> None:
    """Fail in one line, before serving, if the installed speech engine cannot run."""
    from reapi.providers.tasks.espeak import EspeakUnavailable, start

    try:
        asyncio.run(start())
    except EspeakUnavailable as exc:
        raise click.ClickException(str(exc)) from None


def _money(units: int, workspace: str) -> str:
    return format_usd(units) if workspace == "chat" else format_credits(units)


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.ClickException(f"{text!r} is not an ISO date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_expiry(text: str) -> datetime:
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {
            "d": timedelta(days=amount),
            "h": timedelta(hours=amount),
            "m": timedelta(minutes=amount),
        }[unit]
        return datetime.now(UTC) + delta
    return _parse_time(text)


def _configure_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")


if __name__ == "__main__":
    main()
