"""The S3-compatible media store (AWS S3, Cloudflare R2, MinIO, ...), for ``tasks.s3``.

boto3 is synchronous, so each call runs in a thread; its clients are safe to share between
threads. Objects are served back through the gateway's own ``/media/tasks/...`` URLs, so the
bucket can stay private. Needs the ``s3`` extra (``pip install 'reapi[s3]'``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from reapi.config import ConfigError, TaskS3
from reapi.storage.media import StoredMedia, check_key, content_type_of


class S3MediaStore:
    def __init__(self, settings: TaskS3) -> None:
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError:
            raise ConfigError(
                "tasks.s3 needs boto3: install reapi with the s3 extra (pip install 'reapi[s3]')"
            ) from None

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        self._client = boto3.client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=secret(settings.access_key_id),
            aws_secret_access_key=secret(settings.secret_access_key),
            config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}),
        )
        self._bucket = settings.bucket
        self._prefix = settings.prefix

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self._client.put_object,
            Bucket=self._bucket,
            Key=self._prefix + check_key(key),
            Body=data,
            ContentType=content_type,
        )

    async def fetch(self, key: str) -> StoredMedia | None:
        return await asyncio.to_thread(self._fetch, self._prefix + check_key(key))

    def _fetch(self, name: str) -> StoredMedia | None:
        try:
            found = self._client.get_object(Bucket=self._bucket, Key=name)
        except self._client.exceptions.NoSuchKey:
            return None
        body = found["Body"]
        try:
            content_type = found.get("ContentType") or content_type_of(name)
            return StoredMedia(str(content_type), data=body.read())
        finally:
            body.close()

    async def delete_prefix(self, prefix: str) -> None:
        await asyncio.to_thread(self._delete_prefix, self._prefix + prefix)

    def _delete_prefix(self, prefix: str) -> None:
        listed = self._client.list_objects_v2(Bucket=self._bucket, Prefix=prefix)
        keys = [{"Key": item["Key"]} for item in listed.get("Contents", [])]
        if keys:
            self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": keys})

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
