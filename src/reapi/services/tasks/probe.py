"""The length of a source media file, measured by the gateway before it debits.

Models billed per source minute (stem separation, voice change) cost what the source lasts, and
the debit happens before dispatch, so the gateway fetches the source itself, through the
guarded download session, and reads its length from the container headers (mutagen: MP3,
WAV, FLAC, Ogg, AAC/M4A and more). A client-declared duration is never trusted: it is the
price. The upstream fetches the same URL again; that double fetch is the cost of charging
exactly up front.
"""

from __future__ import annotations

import asyncio
import io
from decimal import Decimal

import aiohttp
import mutagen

from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.services.tasks.outputs import DownloadFailed, download

DEFAULT_MAX_SOURCE_BYTES = 256 * 1024 * 1024


async def probe_source_seconds(
    session: aiohttp.ClientSession,
    url: str,
    *,
    param: str,
    max_bytes: int = DEFAULT_MAX_SOURCE_BYTES,
) -> Decimal:
    """Seconds of audio (or video) at ``url``, to the millisecond. ``session`` must be the
    guarded download session. Raises ``TaskError(SOURCE_UNREADABLE)`` naming ``param``."""
    try:
        media = await download(session, url, max_bytes=max_bytes)
    except DownloadFailed as exc:
        raise TaskError(
            TaskErrorCode.SOURCE_UNREADABLE,
            f"{param}: {TaskErrorCode.SOURCE_UNREADABLE.default_message}: {exc.reason}",
            param=param,
            detail=exc.detail,
        ) from exc
    seconds = await asyncio.to_thread(media_seconds, media.data)
    if seconds is None:
        raise TaskError(
            TaskErrorCode.SOURCE_UNREADABLE,
            f"{param}: not a media format whose length can be read",
            param=param,
        )
    return seconds


def media_seconds(data: bytes) -> Decimal | None:
    """Length from the container headers, or None for an unknown or broken file."""
    try:
        parsed = mutagen.File(io.BytesIO(data))
    except mutagen.MutagenError:
        return None
    length = getattr(getattr(parsed, "info", None), "length", None)
    if not isinstance(length, int | float) or length <= 0:
        return None
    return Decimal(str(round(float(length), 3)))
