import aiohttp

from reapi.providers.tasks.base import UpstreamJob
from reapi.providers.tasks.fal import FalAdapter
from tests.fakes.task_upstreams import Behaviour, FakeFalQueue
from tests.providers.tasks.conftest import poll_until_done, start

ADAPTER = FalAdapter()
MAP = {"veo3.1-fast": "fal-ai/veo3.1/fast"}


async def test_wire_format(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeFalQueue, Behaviour(media="image", outputs=2), "fal", "veo3.1-fast",
                      {"veo3.1-fast": "fal-ai/veo3.1/fast"})  # fmt: skip
    try:
        params = {"prompt": "waves", "aspect_ratio": "16:9"}
        job = await ADAPTER.submit(session, rig.channel, rig.model, params)
        create = rig.fake.requests[0]
        assert (create.method, create.path) == ("POST", "/fal-ai/veo3.1/fast")
        assert create.headers["Authorization"] == "Key test-key"
        assert create.json == params  # the input is the body itself, no wrapper
        # Status and result live under owner/name, without the endpoint's sub-path.
        assert job.data["status_url"].endswith(f"/fal-ai/veo3.1/requests/{job.job_id}/status")
        state, _ = await poll_until_done(ADAPTER, session, rig.channel, job)
        assert state.status == "completed"
        assert [o.content_type for o in state.outputs] == ["image/png", "image/png"]
        assert all(r.headers["Authorization"] == "Key test-key" for r in rig.fake.requests)
    finally:
        await rig.fake.close()


async def test_foreign_status_urls_are_not_followed(session: aiohttp.ClientSession) -> None:
    """The channel key goes along with every poll: never to a host the upstream names."""
    rig = await start(FakeFalQueue, Behaviour(media="video"), "fal", "veo3.1-fast",
                      {"veo3.1-fast": "fal-ai/veo3.1/fast"})  # fmt: skip
    try:
        fake = rig.fake
        assert isinstance(fake, FakeFalQueue)
        original = fake._urls

        def hostile(app_id: str, rid: str) -> dict[str, str]:
            return {k: v.replace("127.0.0.1", "collector.example") for k, v in
                    original(app_id, rid).items()}  # fmt: skip

        fake._urls = hostile  # type: ignore[method-assign]
        job = await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        assert job.data["status_url"].startswith(rig.fake.base_url)
        assert job.data["response_url"].startswith(rig.fake.base_url)
    finally:
        await rig.fake.close()


async def test_completed_with_error_is_a_certain_failure(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeFalQueue, Behaviour(media="video", outcome="fail", error="OOM"), "fal",
                      "veo3.1-fast", MAP)  # fmt: skip
    try:
        job = await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        state, _ = await poll_until_done(ADAPTER, session, rig.channel, job)
        assert state.status == "failed" and state.certain
        assert state.error == "OOM (runner_disconnected)"
    finally:
        await rig.fake.close()


async def test_result_error_detail_is_a_failure(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeFalQueue, Behaviour(media="video", outcome="fail", error="bad frame"),
                      "fal", "veo3.1-fast", MAP)  # fmt: skip
    try:
        job = await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        state = await ADAPTER._result(session, rig.channel, UpstreamJob.from_json(job.to_json()))
        assert state.status == "failed" and "bad frame" in (state.error or "")
    finally:
        await rig.fake.close()
