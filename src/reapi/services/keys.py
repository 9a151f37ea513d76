"""Users and API keys: creation, authentication with a short-lived cache, revocation, and the
one rule for what a key may do.

A key's secret is shown once and never stored: the database keeps its SHA-256 (a key carries 256
random bits, so a fast hash is enough; there is nothing to brute-force). Lookups go by that hash
and the match is confirmed with a constant-time comparison.

Authentication answers from memory; an entry is re-read from the database once it is older than
``cache_seconds``, so a revocation made anywhere (the CLI, another node) is honoured everywhere
within that time, and at once on the node that revoked through the admin API.

Every route that takes a key goes through ``KeyService.authenticate`` (missing, unknown or
revoked key, wrong workspace: 401; expired: 403) and, wherever a call names a model or a group,
``Principal.check`` (a model off the key's list or a group its user may not use: 403). The
routes only render these errors in their own envelope; none decides them itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from reapi.errors import AuthenticationFailed, PermissionDenied
from reapi.storage import accounts
from reapi.storage.db import Database
from reapi.storage.tables import ApiKey, User
from reapi.storage.types import utcnow

WORKSPACES = {"chat": "sk-", "tasks": "rk_live_"}
# Also the patterns of the admin API's schema; matched whole (``$`` alone lets a final
# newline through).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$"
GROUP_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_GROUP = re.compile(GROUP_PATTERN)
_NEGATIVE_CACHE_LIMIT = 10_000


class AccountError(ValueError):
    """An operator mistake (unknown user, bad name): one line, no traceback."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from a key, cached, passed down the request path."""

    key_id: str
    user_id: int
    user_name: str
    workspace: str
    groups: tuple[str, ...]
    default_group: str | None
    expires_at: datetime | None = None
    allowed_models: frozenset[str] | None = None
    daily_limited: bool = False
    spend_limited: bool = False

    def check(self, *, model: str | None = None, group: str | None = None) -> None:
        """Refuse (PermissionDenied, 403) what this key may not do now: anything once it has
        expired, and the ``model`` or ``group`` a call names when they are not the key's.
        ``authenticate`` runs it before handing a principal out; whatever picks a call's model
        or group runs it again with them, before any money or upstream is involved."""
        if self.expires_at is not None and self.expires_at <= utcnow():
            raise PermissionDenied(
                f"This key expired at {self.expires_at:%Y-%m-%d %H:%M} UTC.", code="key_expired"
            )
        allowed = self.allowed_models
        if model is not None and allowed is not None and model not in allowed:
            raise PermissionDenied(
                f"This key may not use model '{model}' (allowed: "
                f"{', '.join(sorted(allowed)) or 'none'}).",
                param="model",
                code="model_not_allowed",
            )
        if group is not None and group not in self.groups:
            raise PermissionDenied(
                f"This key may not use group '{group}' (allowed: {', '.join(self.groups)}).",
                param="group",
                code="group_not_allowed",
            )


# Cached like a key, answered with its own message.
REVOKED = Principal("", 0, "", "", (), None)


@dataclass(frozen=True, slots=True)
class KeyControls:
    """Optional per-key limits: spend (units), expiry, allowed models."""

    spend_limit: int | None = None
    daily_spend_limit: int | None = None
    expires_at: datetime | None = None
    allowed_models: list[str] | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"{name!r} is not a valid name: use 1-128 letters, digits and _ . @ + - "
            "(starting with a letter or digit)"
        )
    return name


def check_groups(groups: Sequence[str]) -> list[str]:
    for group in groups:
        if not _GROUP.fullmatch(group):
            raise AccountError(f"{group!r} is not a valid group name")
    return list(dict.fromkeys(groups))


class KeyService:
    def __init__(
        self,
        db: Database,
        *,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._loading: dict[str, asyncio.Future[Principal | None]] = {}
        self._last_used: dict[str, datetime] = {}

    async def create_user(self, name: str, groups: Sequence[str] = ("default",)) -> User:
        async with self._db.session() as session:
            try:
                return await accounts.add_user(
                    session, check_name(name), check_groups(groups or ["default"])
                )
            except accounts.DuplicateName as exc:
                raise AccountError(str(exc)) from None

    async def require_user(self, name: str) -> User:
        async with self._db.session() as session:
            user = await accounts.user_by_name(session, name)
        if user is None:
            raise AccountError(f"no user named {name!r}")
        return user

    async def create_key(
        self,
        user_name: str,
        *,
        label: str = "",
        group: str | None = None,
        workspace: str = "chat",
        controls: KeyControls | None = None,
    ) -> NewKey:
        if workspace not in WORKSPACES:
            raise AccountError(f"unknown workspace {workspace!r}: use chat or tasks")
        if group is not None:
            check_groups([group])
        controls = controls or KeyControls()
        for limit in (controls.spend_limit, controls.daily_spend_limit):
            if limit is not None and limit <= 0:
                raise AccountError("spend limits must be positive amounts")
        secret = WORKSPACES[workspace] + secrets.token_urlsafe(32)
        async with self._db.session() as session:
            user = await accounts.user_by_name(session, user_name)
            if user is None:
                raise AccountError(f"no user named {user_name!r}")
            if group is None and "default" not in user.groups:
                # Without this, a key whose user may not use "default" would refuse every call
                # that names no group.
                group = user.groups[0]
            if group is not None and group not in user.groups:
                raise AccountError(
                    f"user {user_name!r} may not use group {group!r} "
                    f"(allowed: {', '.join(user.groups)})"
                )
            key = await accounts.add_key(
                session,
                ApiKey(
                    id="key_" + secrets.token_hex(8),
                    user_id=user.id,
                    workspace=workspace,
                    name=label,
                    secret_hash=hash_secret(secret),
                    hint=f"{secret[: len(WORKSPACES[workspace]) + 4]}...{secret[-4:]}",
                    default_group=group,
                    spend_limit=controls.spend_limit,
                    daily_spend_limit=controls.daily_spend_limit,
                    expires_at=controls.expires_at,
                    allowed_models=controls.allowed_models,
                ),
            )
        return NewKey(key, secret)

    async def list_users(self) -> Sequence[User]:
        async with self._db.session() as session:
            return await accounts.list_users(session)

    async def list_keys(self, user_name: str) -> Sequence[ApiKey]:
        async with self._db.session() as session:
            user = await accounts.user_by_name(session, user_name)
            if user is None:
                raise AccountError(f"no user named {user_name!r}")
            return await accounts.keys_of_user(session, user.id)

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with self._db.session() as session:
            key = await accounts.key_by_id(session, key_id)
            if key is None:
                raise AccountError(f"no key with id {key_id!r}")
            if key.revoked_at is None:
                key.revoked_at = utcnow()
            hashed = key.secret_hash
        self._cache.pop(hashed, None)
        return key

    async def authenticate(self, secret: str | None, *, workspace: str) -> Principal:
        """The caller behind ``secret``, if it is a live key of ``workspace`` that has not
        expired; else AuthenticationFailed (401) or PermissionDenied (403, ``key_expired``).
        A key of the other workspace is refused like an unknown one: keys never cross."""
        if not secret:
            raise AuthenticationFailed(
                "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY' "
                "(or 'x-api-key: YOUR_KEY').",
                code="missing_api_key",
            )
        hashed = hash_secret(secret)
        now = self._clock()
        cached = self._cache.get(hashed)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            principal = await self._refresh(hashed, now)
        if principal is None:
            raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
        if principal is REVOKED:
            raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
        if principal.workspace != workspace:
            raise AuthenticationFailed(
                f"This is a {principal.workspace} key; this endpoint takes {workspace} keys "
                f"({WORKSPACES[workspace]}...).",
                code="invalid_api_key",
            )
        principal.check()
        self._last_used[principal.key_id] = utcnow()
        return principal

    async def _refresh(self, hashed: str, now: float) -> Principal | None:
        # One lookup per key at a time: calls arriving while it runs wait for its answer
        # instead of each asking the database (a burst would otherwise stampede it).
        loading = self._loading.get(hashed)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._loading[hashed] = future
        try:
            principal = await self._load(hashed)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the waiters, if any, get it; nobody else must see it as lost
            raise
        finally:
            del self._loading[hashed]
        if principal is None and len(self._cache) > _NEGATIVE_CACHE_LIMIT:
            # Bounded memory under a flood of random keys: drop everything, reload on use.
            self._cache.clear()
        self._cache[hashed] = (principal, now + self._ttl)
        future.set_result(principal)
        return principal

    async def _load(self, hashed: str) -> Principal | None:
        async with self._db.read() as session:
            found = await accounts.key_with_user_by_hash(session, hashed)
        if found is None:
            return None
        key, user = found
        if not hmac.compare_digest(key.secret_hash, hashed):
            return None
        if key.revoked_at is not None or user.disabled_at is not None:
            return REVOKED
        return Principal(
            key_id=key.id,
            user_id=user.id,
            user_name=user.name,
            workspace=key.workspace,
            groups=tuple(user.groups),
            default_group=key.default_group,
            expires_at=key.expires_at,
            allowed_models=frozenset(key.allowed_models)
            if key.allowed_models is not None
            else None,
            daily_limited=key.daily_spend_limit is not None,
            spend_limited=key.spend_limit is not None or key.daily_spend_limit is not None,
        )

    async def flush_last_used(self) -> None:
        """Write last-used times in one batch; called periodically, off the request path."""
        if not self._last_used:
            return
        pending, self._last_used = self._last_used, {}
        async with self._db.session() as session:
            await accounts.touch_keys(session, pending)
