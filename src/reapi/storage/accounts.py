"""Users and API keys: the SQL behind the key service and the operator CLI."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from reapi.storage.tables import ApiKey, User


class DuplicateName(ValueError):
    pass


async def add_user(session: AsyncSession, name: str, groups: list[str]) -> User:
    user = User(name=name, groups=groups)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise DuplicateName(f"a user named {name!r} already exists") from None
    return user


async def user_by_name(session: AsyncSession, name: str) -> User | None:
    result = await session.execute(select(User).where(User.name == name))
    return result.scalar_one_or_none()


async def user_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def list_users(session: AsyncSession) -> Sequence[User]:
    return (await session.execute(select(User).order_by(User.id))).scalars().all()


async def set_user_groups(session: AsyncSession, user: User, groups: list[str]) -> None:
    user.groups = groups
    await session.flush()


async def add_key(session: AsyncSession, key: ApiKey) -> ApiKey:
    session.add(key)
    await session.flush()
    return key


async def key_with_user_by_hash(
    session: AsyncSession, secret_hash: str
) -> tuple[ApiKey, User] | None:
    result = await session.execute(
        select(ApiKey, User)
        .join(User, User.id == ApiKey.user_id)
        .where(ApiKey.secret_hash == secret_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def key_by_id(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def keys_of_user(session: AsyncSession, user_id: int) -> Sequence[ApiKey]:
    result = await session.execute(
        select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
    )
    return result.scalars().all()


async def touch_keys(session: AsyncSession, last_used: dict[str, datetime]) -> None:
    for key_id, when in last_used.items():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .where((ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < when))
            .values(last_used_at=when)
        )
