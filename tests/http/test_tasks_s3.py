"""Task outputs in an S3-compatible bucket (moto's S3 server on 127.0.0.1): mirrored there
before the task completes, served from the gateway's own URLs, deleted by the sweeper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from reapi.config import build_config
from reapi.settings import Settings
from tests.fakes.server import free_port
from tests.fakes.task_upstreams import PNG_1X1
from tests.task_gateway import TaskFakes, TaskGateway, task_config_raw

BUCKET = "reapi-media"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    client.close()
    server.stop()


@pytest.fixture(scope="module")
def gw(
    s3: Any, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TaskGateway]:
    fakes = TaskFakes()
    raw = task_config_raw(fakes, tmp_path_factory.mktemp("unused"))
    raw["tasks"]["s3"] = {
        "bucket": BUCKET,
        "endpoint_url": s3.meta.endpoint_url,
        "access_key_id": "test",
        "secret_access_key": "test",
        "prefix": "gw1/",
    }
    gateway = TaskGateway(Settings(database_url=database_url), build_config(raw))
    yield gateway
    gateway.stop()
    fakes.stop()


def test_outputs_are_mirrored_to_the_bucket_and_served_by_the_gateway(
    gw: TaskGateway, s3: Any
) -> None:
    _, key = gw.user("100")
    task_id = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
    task = gw.wait(key, task_id)
    assert task["status"] == "completed", task
    name = f"gw1/tasks/{task_id[5:]}/0.png"
    stored = s3.get_object(Bucket=BUCKET, Key=name)
    assert stored["Body"].read() == PNG_1X1
    assert stored["ContentType"] == "image/png"
    served = httpx.get(task["output"]["image_urls"][0])
    assert served.status_code == 200 and served.content == PNG_1X1
    assert served.headers["content-type"] == "image/png"
    assert httpx.get(f"{gw.url}/media/tasks/{task_id[5:]}/9.png").status_code == 404


async def test_store_deletes_a_task_prefix(s3: Any) -> None:
    from reapi.config import TaskS3
    from reapi.storage.s3 import S3MediaStore

    store = S3MediaStore(
        TaskS3(bucket=BUCKET, endpoint_url=s3.meta.endpoint_url, access_key_id="test",
               secret_access_key="test", prefix="sweep/")  # type: ignore[arg-type]
    )  # fmt: skip
    try:
        for n in range(3):
            await store.put(f"tasks/abc123/{n}.mp3", b"x", "audio/mpeg")
        await store.put("tasks/keep1/0.mp3", b"y", "audio/mpeg")
        await store.delete_prefix("tasks/abc123/")
        assert await store.fetch("tasks/abc123/0.mp3") is None
        kept = await store.fetch("tasks/keep1/0.mp3")
        assert kept is not None and kept.data == b"y" and kept.content_type == "audio/mpeg"
    finally:
        await store.close()
