import base64

import aiohttp

from reapi.providers.tasks.replicate import ReplicateAdapter, create_request, prediction_state
from tests.fakes.task_upstreams import PNG_1X1, Behaviour, FakeReplicate
from tests.providers.tasks.conftest import poll_until_done, start

ADAPTER = ReplicateAdapter()
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def test_create_paths() -> None:
    assert create_request("google/veo-3.1-fast", {"prompt": "x"}) == (
        "/v1/models/google/veo-3.1-fast/predictions",
        {"input": {"prompt": "x"}},
    )
    assert create_request(f"owner/model:{VERSION}", {"a": 1}) == (
        "/v1/predictions",
        {"version": VERSION, "input": {"a": 1}},
    )
    assert create_request(VERSION, {}) == ("/v1/predictions", {"version": VERSION, "input": {}})


def test_prediction_states() -> None:
    assert prediction_state({"status": "starting"}).status == "processing"
    assert prediction_state({"status": "processing"}).status == "processing"
    failed = prediction_state({"status": "failed", "error": "NSFW content detected"})
    assert (failed.status, failed.error, failed.certain) == (
        "failed",
        "NSFW content detected",
        True,
    )
    assert prediction_state({"status": "canceled"}).status == "failed"
    inline = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()
    state = prediction_state(
        {"status": "succeeded", "output": {"image": inline, "video": "https://r.example/v.mp4"}}
    )
    assert [(o.data, o.content_type, o.url) for o in state.outputs] == [
        (PNG_1X1, "image/png", None),
        (None, None, "https://r.example/v.mp4"),
    ]
    empty = prediction_state({"status": "succeeded", "output": None})
    assert empty.status == "failed" and not empty.certain


async def test_wire_format(session: aiohttp.ClientSession) -> None:
    rig = await start(
        FakeReplicate,
        Behaviour(media="video", polls_before_done=1),
        "replicate",
        "veo3.1-fast-official",
        {"veo3.1-fast-official": "google/veo-3.1-fast"},
    )
    try:
        from dataclasses import replace

        channel = replace(rig.channel, base_url=rig.fake.base_url + "/v1/")
        params = {"prompt": "waves", "duration": 8}
        job = await ADAPTER.submit(session, channel, rig.model, params)
        create = rig.fake.requests[0]
        assert create.path == "/v1/models/google/veo-3.1-fast/predictions"
        assert create.json == {"input": params}
        assert create.headers["Authorization"] == "Bearer test-key"
        assert "Prefer" not in create.headers
        state, polls = await poll_until_done(ADAPTER, session, channel, job)
        assert (state.status, polls) == ("completed", 2)
        assert rig.fake.requests[-1].path == f"/v1/predictions/{job.job_id}"
    finally:
        await rig.fake.close()


async def test_canceled_prediction_fails(session: aiohttp.ClientSession) -> None:
    rig = await start(
        FakeReplicate,
        Behaviour(media="video", outcome="cancel"),
        "replicate",
        "veo3.1-fast-official",
        {"veo3.1-fast-official": f"google/veo:{VERSION}"},
    )
    try:
        job = await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        assert rig.fake.requests[0].json["version"] == VERSION
        state, _ = await poll_until_done(ADAPTER, session, rig.channel, job)
        assert state.status == "failed" and "canceled" in (state.error or "")
    finally:
        await rig.fake.close()
