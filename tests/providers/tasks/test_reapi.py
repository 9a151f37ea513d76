import aiohttp
import pytest

from reapi.providers.tasks.base import SubmitError
from reapi.providers.tasks.reapi import ReapiAdapter, _task_id, task_state
from tests.fakes.task_upstreams import Behaviour, FakeReapiTasks
from tests.providers.tasks.conftest import poll_until_done, start

ADAPTER = ReapiAdapter()


async def test_chained_gateway_round_trip(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeReapiTasks, Behaviour(media="audio", outputs=2, polls_before_done=2),
                      "reapi", "audio-stem-separator",
                      {"audio-stem-separator": "stem-splitter-v2"})  # fmt: skip
    try:
        params = {"audio_url": "https://cdn.example.com/s.mp3", "stem": "vocals"}
        job = await ADAPTER.submit(session, rig.channel, rig.model, params)
        create = rig.fake.requests[0]
        assert create.path == "/api/v1/audio/generations"
        assert create.json == {**params, "model": "stem-splitter-v2"}
        assert job.job_id.startswith("task_")
        state, polls = await poll_until_done(ADAPTER, session, rig.channel, job)
        assert (state.status, polls) == ("completed", 3)
        assert [o.label for o in state.outputs] == ["vocals", "no_vocals"]
        assert rig.fake.requests[-1].path == f"/api/v1/tasks/{job.job_id}"
    finally:
        await rig.fake.close()


@pytest.mark.parametrize(("model", "path"), [("gpt-image-2", "images"), ("veo3.1-fast", "videos")])
async def test_endpoint_follows_media_kind(
    model: str, path: str, session: aiohttp.ClientSession
) -> None:
    rig = await start(FakeReapiTasks, Behaviour(), "reapi", model)
    try:
        from dataclasses import replace

        channel = replace(rig.channel, base_url=rig.fake.base_url + "/api/v1")
        await ADAPTER.submit(session, channel, rig.model, {"prompt": "x"})
        assert rig.fake.requests[0].path == f"/api/v1/{path}/generations"
    finally:
        await rig.fake.close()


@pytest.mark.parametrize(("status", "rejected"), [(400, True), (402, False), (429, False)])
async def test_upstream_refusals(
    status: int, rejected: bool, session: aiohttp.ClientSession
) -> None:
    rig = await start(FakeReapiTasks, Behaviour(create_status=status, create_error="nope"),
                      "reapi", "gpt-image-2")  # fmt: skip
    try:
        with pytest.raises(SubmitError) as info:
            await ADAPTER.submit(session, rig.channel, rig.model, {"prompt": "x"})
        assert info.value.certain and info.value.rejected is rejected
        assert "nope" in info.value.message and info.value.reason == "nope"
    finally:
        await rig.fake.close()


def test_task_states_and_id_shapes() -> None:
    assert _task_id({"id": "task_1"}) == "task_1"
    assert _task_id({"task_id": "t2"}) == "t2"
    assert _task_id({"code": 200, "data": [{"task_id": "t3", "status": "processing"}]}) == "t3"
    assert _task_id({"data": []}) is None
    failed = task_state({"status": "failed", "error": {"code": 50006, "message": "moderated"}})
    assert (failed.error, failed.refusal) == ("[50006] moderated", "moderated")
    broke = task_state({"status": "failed", "error": {"code": 50005, "message": "host x:81"}})
    assert (broke.error, broke.refusal) == ("[50005] host x:81", None)
    done = task_state(
        {"status": "completed", "output": {"video_urls": ["https://c.example/0.mp4"],
                                           "last_frame_url": "https://c.example/f.png"}}
    )  # fmt: skip
    assert [(o.url, o.label) for o in done.outputs] == [
        ("https://c.example/0.mp4", None),
        ("https://c.example/f.png", "last_frame"),
    ]
    from reapi.services.tasks.outputs import task_output

    mirrored = task_output("video", [(o, f"https://cdn/t/{i}") for i, o in enumerate(done.outputs)])
    assert (list(mirrored.urls), mirrored.last_frame_url, list(mirrored.tracks)) == (
        ["https://cdn/t/0"],
        "https://cdn/t/1",
        [],
    )
    tracks_only = task_state(
        {"status": "completed",
         "output": {"audio_urls": [], "tracks": [{"type": "audio", "label": "converted_mix",
                                                  "url": "https://c.example/m.mp3"}]}}
    )  # fmt: skip
    assert [(o.url, o.label) for o in tracks_only.outputs] == [
        ("https://c.example/m.mp3", "converted_mix")
    ]
    stems = task_output("audio", [(o, "https://cdn/m.mp3") for o in tracks_only.outputs])
    assert [(t.type, t.label) for t in stems.tracks] == [("audio", "converted_mix")]
    assert task_state({"status": "queued"}).status == "processing"
