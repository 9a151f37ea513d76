import base64

import aiohttp
import pytest

from reapi.providers.tasks.base import SubmitError
from reapi.providers.tasks.openai_images import OpenAIImagesAdapter, build_request, pixel_size
from reapi.services.tasks.catalog import validate_task_request
from tests.fakes.task_upstreams import PNG_1X1, Behaviour, FakeOpenAIImages
from tests.providers.tasks.conftest import start

ADAPTER = OpenAIImagesAdapter()


def test_pixel_size_from_ratio_and_tier() -> None:
    assert pixel_size("1:1", "1k") == "1024x1024"
    assert pixel_size("16:9", "2k") == "2048x1152"
    assert pixel_size("9:16", "4k") == "2160x3840"
    assert pixel_size("auto", "4k") == "auto"
    assert pixel_size(None, None) is None
    assert pixel_size("1536x1024", "1k") == "1536x1024"


def test_references_switch_to_the_edits_endpoint() -> None:
    path, body = build_request("gpt-image-2", {"prompt": "x", "size": "1:1", "resolution": "1k"})
    assert path == "/v1/images/generations"
    assert body == {"model": "gpt-image-2", "prompt": "x", "size": "1024x1024"}
    path, body = build_request(
        "gpt-image-2", {"prompt": "x", "image_urls": ["https://a.example/1.png"]}
    )
    assert path == "/v1/images/edits"
    assert body["images"] == [{"image_url": "https://a.example/1.png"}]
    assert "image_urls" not in body


async def test_b64_answer_becomes_inline_bytes(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeOpenAIImages, Behaviour(), "openai_images", "gpt-image-2",
                      {"gpt-image-2": "gpt-image-2-2026-04"})  # fmt: skip
    try:
        params = validate_task_request(
            rig.model,
            {"prompt": "fox", "size": "3:2", "resolution": "2k",
             "image_urls": ["https://a.example/ref.png"]},
        )  # fmt: skip
        job = await ADAPTER.submit(session, rig.channel, rig.model, params)
        assert job.result is not None and job.result.status == "completed"
        (out,) = job.result.outputs
        assert (out.data, out.content_type, out.url) == (PNG_1X1, "image/png", None)
        sent = rig.fake.requests[0]
        assert sent.path == "/v1/images/edits"
        assert sent.headers["Authorization"] == "Bearer test-key"
        assert sent.json["model"] == "gpt-image-2-2026-04"
        assert sent.json["size"] == "2048x1360"
        assert await ADAPTER.poll(session, rig.channel, job) is job.result
    finally:
        await rig.fake.close()


async def test_lost_sync_result_is_an_uncertain_failure(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeOpenAIImages, Behaviour(), "openai_images", "gpt-image-2")
    try:
        job = await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        from reapi.providers.tasks.base import UpstreamJob

        restored = UpstreamJob.from_json(job.to_json())
        state = await ADAPTER.poll(session, rig.channel, restored)
        assert state.status == "failed" and not state.certain
    finally:
        await rig.fake.close()


async def test_moderation_refusal_is_marked_rejected(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeOpenAIImages, Behaviour(outcome="fail", create_error="blocked"),
                      "openai_images", "gpt-image-2")  # fmt: skip
    try:
        with pytest.raises(SubmitError) as info:
            await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        assert info.value.rejected and info.value.certain and "blocked" in info.value.message
    finally:
        await rig.fake.close()


async def test_wrong_key_is_certain_but_not_a_content_rejection(
    session: aiohttp.ClientSession,
) -> None:
    fake = await FakeOpenAIImages(Behaviour(), api_key="other").start()
    rig = await start(FakeOpenAIImages, Behaviour(), "openai_images", "gpt-image-2")
    try:
        from dataclasses import replace

        channel = replace(rig.channel, base_url=fake.base_url + "/v1")  # /v1 suffix tolerated
        with pytest.raises(SubmitError) as info:
            await ADAPTER.submit(session, channel, rig.model, {"prompt": "x"})
        assert info.value.status == 401 and info.value.certain and not info.value.rejected
        assert fake.requests[0].path == "/v1/images/generations"
    finally:
        await fake.close()
        await rig.fake.close()


async def test_n_images_as_urls(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeOpenAIImages, Behaviour(url_outputs=True), "openai_images",
                      "gpt-image-2")  # fmt: skip
    try:
        job = await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x", "n": 3})
        assert job.result is not None
        assert [o.url is not None for o in job.result.outputs] == [True, True, True]
        assert base64.b64encode(PNG_1X1)  # the fake serves the same bytes at those URLs
    finally:
        await rig.fake.close()
