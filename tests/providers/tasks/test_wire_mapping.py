"""A vendor's spelling of a field lives in the catalog entry (``upstream``), and every adapter
applies it: the fake upstreams record what actually went over the wire."""

from __future__ import annotations

from dataclasses import replace

import aiohttp
import yaml

from reapi.providers.tasks.base import TaskChannel
from reapi.providers.tasks.fal import FalAdapter
from reapi.providers.tasks.reapi import ReapiAdapter
from reapi.providers.tasks.replicate import ReplicateAdapter
from reapi.services.tasks.catalog import load_task_models, serves, validate_task_request
from tests.fakes.task_upstreams import Behaviour, FakeFalQueue, FakeReapiTasks, FakeReplicate
from tests.providers.tasks.conftest import start


async def test_replicate_gets_veo_frames_under_its_own_names(
    session: aiohttp.ClientSession,
) -> None:
    rig = await start(
        FakeReplicate,
        Behaviour(media="video"),
        "replicate",
        "veo3.1-fast-official",
        {"veo3.1-fast-official": "google/veo-3.1-fast"},
    )
    try:
        params = validate_task_request(
            rig.model,
            {"prompt": "waves", "resolution": "1080p", "duration": 6,
             "first_frame_image": "https://m.example.com/first.png",
             "last_frame_image": "https://m.example.com/last.png"},
        )  # fmt: skip
        await ReplicateAdapter().submit(session, rig.channel, rig.model, params)
        sent = rig.fake.requests[0].json["input"]
        assert sent["image"] == "https://m.example.com/first.png"
        assert sent["last_frame"] == "https://m.example.com/last.png"
        assert "first_frame_image" not in sent and "last_frame_image" not in sent
        assert (sent["prompt"], sent["resolution"], sent["duration"]) == ("waves", "1080p", 6)
    finally:
        await rig.fake.close()


async def test_replicate_gets_imagen_size_as_aspect_ratio(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeReplicate, Behaviour(media="image"), "replicate", "imagen-4-0",
                      {"imagen-4-0": "google/imagen-4"})  # fmt: skip
    try:
        params = validate_task_request(rig.model, {"prompt": "a lighthouse", "size": "9:16"})
        await ReplicateAdapter().submit(session, rig.channel, rig.model, params)
        create = rig.fake.requests[0]
        assert create.path == "/v1/models/google/imagen-4/predictions"
        assert create.json["input"] == {"prompt": "a lighthouse", "aspect_ratio": "9:16"}
    finally:
        await rig.fake.close()


async def test_a_value_meaning_the_default_is_not_sent(session: aiohttp.ClientSession) -> None:
    rig = await start(FakeReapiTasks, Behaviour(media="audio"), "reapi", "audio-stem-separator")
    adapter = ReapiAdapter()
    try:
        for splitter in ("auto", "orion"):
            params = validate_task_request(
                rig.model,
                {"audio_url": "https://m.example.com/s.mp3", "stem": "vocals",
                 "splitter": splitter},
            )  # fmt: skip
            await adapter.submit(session, rig.channel, rig.model, params)
        auto, orion = (r.json for r in rig.fake.requests if r.method == "POST")
        assert "splitter" not in auto
        assert orion["splitter"] == "orion"
        assert auto["model"] == "audio-stem-separator" and auto["stem"] == "vocals"
    finally:
        await rig.fake.close()


OPERATOR = yaml.safe_load(
    """
my-clip:
  kind: video
  channel_type: reapi
  billing: {unit: generation, credits: "10"}
  schema:
    prompt: {type: string, required: true}
    size: {type: string, enum: ["16:9", "9:16"], default: "16:9"}
    resolution: {type: string, enum: [720p, 1080p], default: 720p}
    duration: {type: integer, enum: [5, 10], default: 5}
  upstream:
    "*": {values: {resolution: {720p: 720P, 1080p: 1080P}}}
    fal:
      fields: {size: aspect_ratio}
      values: {duration: {5: 5s, 10: 10s}}
"""
)


async def test_operator_mapping_renames_and_respells_per_channel_type(
    session: aiohttp.ClientSession,
) -> None:
    model = load_task_models(OPERATOR)["my-clip"]
    # A mapping for fal says the entry can speak to fal, besides its own channel type.
    assert serves(model, "fal", ["my-clip"]) and serves(model, "reapi", ["my-clip"])
    assert not serves(model, "replicate", ["my-clip"])
    params = validate_task_request(model, {"prompt": "x", "resolution": "1080P", "duration": 10})
    fal = await FakeFalQueue(Behaviour(media="video")).start()
    chained = await FakeReapiTasks(Behaviour(media="video")).start()
    try:
        fal_channel = TaskChannel(name="fal", type="fal", base_url=fal.base_url,
                                  api_key="test-key", models=["my-clip"],
                                  model_map={"my-clip": "fal-ai/clip"})  # fmt: skip
        await FalAdapter().submit(session, fal_channel, model, params)
        assert fal.requests[0].path == "/fal-ai/clip"
        assert fal.requests[0].json == {
            "prompt": "x",
            "aspect_ratio": "16:9",
            "resolution": "1080P",
            "duration": "10s",
        }
        reapi_channel = replace(fal_channel, type="reapi", base_url=chained.base_url)
        await ReapiAdapter().submit(session, reapi_channel, model, params)
        # Only the mapping for every channel applies here: reapi takes our own field names.
        assert chained.requests[0].json == {
            "model": "fal-ai/clip",
            "prompt": "x",
            "size": "16:9",
            "resolution": "1080P",
            "duration": 10,
        }
    finally:
        await fal.close()
        await chained.close()
