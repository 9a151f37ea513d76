"""The built-in task catalog against the public documentation of the models it describes.

The facts below are typed in by hand from the models' public pages, so a typo in the catalog
fails here. Where the docs state no price, the catalog must not carry one either."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from reapi.money import UNITS_PER_CREDIT
from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.services.tasks.catalog import (
    TaskModel,
    load_task_models,
    price,
    task_mode,
    validate_task_request,
)
from reapi.services.tasks.schema import CatalogError, FieldSpec

C = UNITS_PER_CREDIT
E = TaskErrorCode
BUILTIN = load_task_models({})


def sample(spec: FieldSpec) -> Any:
    """A value the spec accepts, built from its own constraints."""
    if spec.enum is not None:
        return spec.enum[0]
    if spec.type == "string":
        return "x" * max(1, spec.min_length or 1)
    if spec.type == "url":
        return "https://media.example.com/input"
    if spec.type in ("integer", "number"):
        return int(spec.min) if spec.min is not None else 1
    if spec.type == "boolean":
        return True
    if spec.type == "array":
        assert spec.items is not None
        return [sample(spec.items)] * max(1, spec.min_items or 0)
    assert spec.properties is not None
    return {n: sample(s) for n, s in spec.properties.items() if s.required}


def minimal_request(model: TaskModel) -> dict[str, Any]:
    body = {n: sample(s) for n, s in model.schema.items() if s.required}
    if "prompt" in model.schema:  # text-only modes need one
        body["prompt"] = sample(model.schema["prompt"])
    return body


def refusal(name: str, body: dict[str, Any]) -> tuple[TaskErrorCode, str | None]:
    with pytest.raises(TaskError) as info:
        validate_task_request(BUILTIN[name], body)
    return info.value.code, info.value.param


# The documented models that get an entry; sidebar-only models (no public fields) get none.
DOCUMENTED = {
    "gpt-image-2", "gpt-image-2-official", "imagen-4-0", "midjourney", "mj-v7", "flux-2",
    "flux-2-flex", "veo3.1-fast", "veo3.1-quality", "veo3.1-lite", "veo3.1-fast-official",
    "veo3.1-quality-official", "doubao-seedance-2.0", "happyhorse-1.0",
    "happyhorse-1.0-official", "happyhorse-1-1", "kling-3-0-turbo",
    "grok-imagine-video-1.5-beta", "grok-imagine-video-1.5-official", "gemini-omni",
    "topaz-video-upscaler", "mureka-v9-song", "audio-stem-separator",
    "audio-multistem-splitter", "audio-voice-change",
}  # fmt: skip
SIDEBAR_ONLY = ["kling-3-0", "z-image", "nano-banana-2-lite", "seedance-2-0-mini", "viduq3"]


def test_every_documented_model_has_an_entry_and_sidebar_only_ones_none() -> None:
    assert set(BUILTIN) >= DOCUMENTED
    for name in SIDEBAR_ONLY:
        assert name not in BUILTIN


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_entry_describes_itself_and_takes_a_minimal_request(name: str) -> None:
    model = BUILTIN[name]
    assert model.description, "pages show the description"
    assert model.kind in ("image", "video", "audio")
    params = validate_task_request(model, minimal_request(model))
    assert set(params) <= set(model.schema)
    if model.priced:
        source = 90 if model.needs_source_duration else None
        assert price(model, params, source_seconds=source) > 0


# Only these have a public price; everything else waits for the operator's.
PUBLICLY_PRICED = {
    "happyhorse-1.0",
    "audio-stem-separator",
    "audio-multistem-splitter",
    "audio-voice-change",
}


def test_no_price_is_invented() -> None:
    assert {n for n in DOCUMENTED if BUILTIN[n].priced} == PUBLICLY_PRICED
    for name, model in BUILTIN.items():
        if model.priced:
            assert "billing" not in model.unknown and "billing.credits" not in model.unknown
        elif model.billing is None:
            assert model.unknown[0] == "billing", name
        else:
            assert model.unknown[0] == "billing.credits", name


def test_what_is_unknown_of_each_billing() -> None:
    # The unit is public, the rate is not.
    assert BUILTIN["veo3.1-fast"].billing_unit == "generation"
    assert BUILTIN["veo3.1-fast-official"].billing_unit == "second"
    assert BUILTIN["gemini-omni"].billing_unit == "generation"
    assert BUILTIN["imagen-4-0"].billing_unit == "image"
    gpt = BUILTIN["gpt-image-2"].billing
    assert gpt is not None and (gpt.unit, gpt.tier_field) == ("generation", "resolution")
    # Nothing is public (or only inferred): no billing at all.
    for name in ("gpt-image-2-official", "midjourney", "mj-v7", "happyhorse-1.0-official",
                 "doubao-seedance-2.0", "topaz-video-upscaler"):  # fmt: skip
        assert BUILTIN[name].billing is None, name
        assert "billing (unit" in BUILTIN[name].missing_price()
    assert "billing.credits (per generation, keyed by resolution)" in (
        BUILTIN["gpt-image-2"].missing_price()
    )
    with pytest.raises(CatalogError, match="no price"):
        price(BUILTIN["veo3.1-fast"], {"prompt": "x"})


def test_an_operator_price_makes_the_fact_known() -> None:
    models = load_task_models(
        {
            "veo3.1-fast": {"kind": "video", "billing": {"credits": "400"}},
            "midjourney": {"kind": "image", "billing": {"unit": "generation", "credits": "50"}},
        }
    )
    assert models["veo3.1-fast"].priced and models["veo3.1-fast"].unknown == ()
    assert models["midjourney"].priced and models["midjourney"].unknown == ()
    assert price(models["midjourney"], {}) == 50 * C


def test_happyhorse_1_0_as_published() -> None:
    m = BUILTIN["happyhorse-1.0"]
    res = m.schema["resolution"]
    assert (res.enum, res.default) == (("720P", "1080P"), "1080P")
    assert (m.schema["duration"].min, m.schema["duration"].max) == (3, 15)
    assert (m.schema["seed"].min, m.schema["seed"].max) == (0, 2147483647)
    assert m.schema["prompt"].max_length == 2500
    assert (m.schema["image_urls"].min_items, m.schema["image_urls"].max_items) == (1, 9)
    # $0.1625 and $0.2875 per second, whatever the mode.
    ten_720 = validate_task_request(m, {"prompt": "x", "duration": 10, "resolution": "720p"})
    assert price(m, ten_720) == 1625 * C
    edit = validate_task_request(
        m,
        {"duration": 4, "video_url": "https://m.example.com/v.mp4",
         "first_frame_image": "https://m.example.com/f.png"},
    )  # fmt: skip
    assert price(m, edit) == int(Decimal("287.5") * 4 * C)

    def mode(body: dict[str, Any]) -> str | None:
        found = task_mode(m, validate_task_request(m, {"duration": 5, **body}))
        return found.name if found else None

    url = "https://m.example.com/a"
    assert mode({"video_url": url, "first_frame_image": url, "image_urls": [url]}) == "edit"
    assert mode({"first_frame_image": url, "image_urls": [url]}) == "i2v"
    assert mode({"image_urls": [url]}) == "r2v"
    assert mode({"prompt": "x"}) == "t2v"
    assert refusal("happyhorse-1.0", {"duration": 5}) == (E.MISSING_PARAMETER, "prompt")
    assert refusal("happyhorse-1.0", {"prompt": "x", "duration": 16}) == (
        E.OUT_OF_RANGE,
        "duration",
    )


def test_image_models_as_published() -> None:
    flux = BUILTIN["flux-2"].schema
    assert (flux["prompt"].min_length, flux["prompt"].max_length) == (3, 5000)
    assert flux["aspect_ratio"].enum == ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")
    assert flux["aspect_ratio"].default == "1:1"
    assert flux["resolution"].enum == ("1K", "2K")
    # auto needs reference images, which this entry cannot take.
    assert refusal("flux-2", {"prompt": "abc", "aspect_ratio": "auto"})[0] == E.INVALID_CHOICE
    assert BUILTIN["imagen-4-0"].schema["size"].enum == ("1:1", "3:4", "4:3", "9:16", "16:9")
    assert refusal("imagen-4-0", {"prompt": "x", "image_urls": ["https://a.example/i"]}) == (
        E.UNKNOWN_PARAMETER,
        "image_urls",
    )
    official = BUILTIN["gpt-image-2-official"].schema
    assert official["quality"].enum == ("auto", "low", "medium", "high")
    assert refusal("gpt-image-2-official", {"prompt": "x", "n": 5}) == (E.OUT_OF_RANGE, "n")
    assert BUILTIN["gpt-image-2"].schema["image_urls"].max_items == 16


def test_video_models_as_published() -> None:
    assert BUILTIN["veo3.1-fast-official"].schema["duration"].enum == (4, 6, 8)
    assert BUILTIN["veo3.1-fast"].schema["image_urls"].max_items == 3
    assert set(BUILTIN["veo3.1-lite"].schema) == {"prompt"}
    beta = BUILTIN["grok-imagine-video-1.5-beta"].schema
    assert beta["image_urls"].required and (
        beta["image_urls"].min_items,
        beta["image_urls"].max_items,
    ) == (1, 1)
    assert beta["resolution"].enum == ("480p", "720p")
    assert (beta["duration"].min, beta["duration"].max) == (1, 15)
    official = BUILTIN["grok-imagine-video-1.5-official"].schema
    assert official["prompt"].required and official["aspect_ratio"].enum == ("1:1", "16:9", "9:16")
    assert (official["duration"].min, official["duration"].max) == (3, 15)
    assert "nsfw_checker" not in official
    omni = BUILTIN["gemini-omni"].schema
    assert (omni["duration"].min, omni["duration"].max) == (4, 10)
    assert omni["resolution"].enum == ("720p", "1080p", "4K")
    assert BUILTIN["happyhorse-1.0-official"].schema["watermark"].default is False
    assert BUILTIN["happyhorse-1-1"].schema["resolution"].enum == ("720p", "1080p")
    assert BUILTIN["topaz-video-upscaler"].schema["upscale_factor"].enum == ("1", "2", "4")


def test_audio_models_as_published() -> None:
    song = BUILTIN["mureka-v9-song"].schema
    assert (song["number_of_songs"].min, song["number_of_songs"].max) == (1, 3)
    assert song["number_of_songs"].default == 1 and song["output_format"].default == "mp3"
    assert (song["lyrics"].max_length, song["prompt"].max_length) == (3000, 1024)
    voice = BUILTIN["audio-voice-change"]
    assert (voice.schema["accent"].min, voice.schema["accent"].max) == (0, 1)
    assert voice.schema["accent"].default == 1
    assert voice.schema["tonality_reference"].default == "source_file"
    params = validate_task_request(
        voice, {"audio_url": "https://m.example.com/a.mp3", "voice_pack_id": "vp_1"}
    )
    # 200 credits per started minute of the source.
    assert price(voice, params, source_seconds=61) == 400 * C
    assert refusal("audio-voice-change", {"audio_url": "https://m.example.com/a.mp3"}) == (
        E.MISSING_PARAMETER,
        "voice_pack_id",
    )
