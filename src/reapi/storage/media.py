"""Where mirrored task outputs live: a local directory by default, an S3-compatible bucket when
configured. Keys look like ``tasks/<hex id>/<n>.<ext>`` and are the tail of the public URL.

Writes are whole-object and idempotent (two workers mirroring the same output write the same
bytes under the same key), so no locking is needed.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"tasks/[0-9a-z]{1,64}/[0-9]{1,4}\.[0-9a-z]{1,5}")
_PREFIX = re.compile(r"tasks/[0-9a-z]{1,64}/")


class MediaKeyError(ValueError):
    pass


def check_key(key: str) -> str:
    """Keys come from URLs: anything but the expected shape (``..``, slashes) is refused."""
    if not _KEY.fullmatch(key):
        raise MediaKeyError(f"not a media key: {key!r}")
    return key


def content_type_of(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """What serving needs: a local file to stream, or the bytes themselves."""

    content_type: str
    path: Path | None = None
    data: bytes | None = None


class MediaStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...
    async def fetch(self, key: str) -> StoredMedia | None: ...
    async def delete_prefix(self, prefix: str) -> None: ...
    async def close(self) -> None: ...


class LocalMediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self._path(key), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside and rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def fetch(self, key: str) -> StoredMedia | None:
        path = self._path(key)
        exists = await asyncio.to_thread(path.is_file)
        return StoredMedia(content_type_of(key), path=path) if exists else None

    async def delete_prefix(self, prefix: str) -> None:
        if not _PREFIX.fullmatch(prefix):
            raise MediaKeyError(f"not a media prefix: {prefix!r}")
        await asyncio.to_thread(shutil.rmtree, self.root / prefix, True)

    async def close(self) -> None:
        return None
