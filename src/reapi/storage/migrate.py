"""Run Alembic migrations programmatically, so neither operators nor tests need an alembic.ini."""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig

SCRIPT_LOCATION = "reapi.storage:migrations"


def alembic_config(database_url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations. Call from synchronous code only: it runs its own event loop."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)
