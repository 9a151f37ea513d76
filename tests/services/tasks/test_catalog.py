from decimal import Decimal
from typing import Any

import pytest
import yaml

from reapi.money import UNITS_PER_CREDIT
from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.services.tasks.catalog import (
    TaskModel,
    check_request_urls,
    check_source_duration,
    load_task_models,
    price,
    resolve_model,
    source_minutes,
    task_mode,
    validate_task_request,
)
from reapi.services.tasks.schema import CatalogError
from reapi.services.tasks.urls import StaticResolver, UrlPolicy
from tests.task_prices import OPERATOR_PRICES

C = UNITS_PER_CREDIT
# The built-ins as an operator serves them: with prices set where none is public.
CATALOG = load_task_models(OPERATOR_PRICES)
BUILTIN = load_task_models({})
E = TaskErrorCode


def model(name: str) -> TaskModel:
    return CATALOG[name]


def rejects(name: str, body: dict[str, Any]) -> TaskError:
    with pytest.raises(TaskError) as info:
        validate_task_request(model(name), {"model": name, **body})
    return info.value


def test_builtins_cover_every_kind_and_unit() -> None:
    assert {m.kind for m in BUILTIN.values()} == {"image", "video", "audio"}
    assert {m.billing_unit for m in BUILTIN.values()} == {
        None,  # not even the unit is public
        "generation",
        "image",
        "second",
        "song",
        "source_minute",
        "stem_minute",
        "thousand_characters",
    }


def test_valid_request_gets_defaults_and_drops_model() -> None:
    params = validate_task_request(
        model("gpt-image-2"), {"model": "gpt-image-2", "prompt": "a fox"}
    )
    assert params == {"prompt": "a fox", "size": "auto", "resolution": "1k"}


def test_enum_matching_forgives_case_only() -> None:
    params = validate_task_request(
        model("doubao-seedance-2.0"), {"prompt": "x", "resolution": "1080P"}
    )
    assert params["resolution"] == "1080p"


def test_integral_float_is_an_integer_and_null_is_absent() -> None:
    params = validate_task_request(
        model("doubao-seedance-2.0"), {"prompt": "x", "duration": 6.0, "image_urls": None}
    )
    assert params["duration"] == 6 and isinstance(params["duration"], int)
    assert "image_urls" not in params


# One request per validation code: each code the table defines is produced somewhere.
@pytest.mark.parametrize(
    ("name", "body", "code", "param"),
    [
        ("gpt-image-2", {}, E.MISSING_PARAMETER, "prompt"),
        ("gpt-image-2", {"prompt": 5}, E.WRONG_TYPE, "prompt"),
        ("gpt-image-2", {"prompt": "x", "image_urls": "https://a.example/x.png"}, E.WRONG_TYPE,
         "image_urls"),
        ("gpt-image-2", {"prompt": "x", "resolution": "8k"}, E.INVALID_CHOICE, "resolution"),
        ("gpt-image-2", {"prompt": "x", "image_urls": ["https://a.example/x.png"] * 17},
         E.TOO_MANY_ITEMS, "image_urls"),
        ("gpt-image-2", {"prompt": "x", "n": 2}, E.UNKNOWN_PARAMETER, "n"),
        ("gpt-image-2", {"prompt": ""}, E.BAD_LENGTH, "prompt"),
        ("gpt-image-2", {"prompt": "x", "image_urls": ["ftp://a.example/x.png"]}, E.INVALID_URL,
         "image_urls.0"),
        ("gpt-image-2", {"prompt": "x", "image_urls": ["data:image/png;base64,AAAA"]},
         E.DATA_URL_REJECTED, "image_urls.0"),
        ("gpt-image-2", {"prompt": "x", "image_urls": ["https://a.example/1", "http://[::1]/"]},
         E.PRIVATE_ADDRESS_REJECTED, "image_urls.1"),
        ("doubao-seedance-2.0", {"prompt": "x", "duration": 16}, E.OUT_OF_RANGE, "duration"),
        ("doubao-seedance-2.0", {"prompt": "x", "duration": True}, E.WRONG_TYPE, "duration"),
        ("doubao-seedance-2.0", {"image_urls": ["https://a.example/1"],
                                 "image_with_roles": [{"url": "https://a.example/2",
                                                       "role": "first_frame"}]},
         E.CONFLICTING_PARAMETERS, "image_with_roles"),
        ("doubao-seedance-2.0", {"image_with_roles": [{"url": "https://a.example/2"}]},
         E.MISSING_PARAMETER, "image_with_roles.0.role"),
        ("doubao-seedance-2.0", {"image_with_roles": [{"url": "http://10.0.0.1/", "role":
                                                       "first_frame"}]},
         E.PRIVATE_ADDRESS_REJECTED, "image_with_roles.0.url"),
        ("doubao-seedance-2.0", {"image_with_roles": [{"url": "https://a.example/", "role": "x",
                                                       "extra": 1}]},
         E.UNKNOWN_PARAMETER, "image_with_roles.0.extra"),
        ("doubao-seedance-2.0", {"image_with_roles": []}, E.TOO_FEW_ITEMS, "image_with_roles"),
        ("doubao-seedance-2.0", {"resolution": "720p"}, E.MISSING_PARAMETER, "prompt"),
        ("mureka-v9-song", {"lyrics": "la" * 1501}, E.BAD_LENGTH, "lyrics"),
        ("mureka-v9-song", {"lyrics": "la", "number_of_songs": 0}, E.OUT_OF_RANGE,
         "number_of_songs"),
        ("audio-stem-separator", {"audio_url": "https://a.example/s.mp3", "stem": "kazoo"},
         E.INVALID_CHOICE, "stem"),
        ("audio-multistem-splitter", {"audio_url": "https://a.example/s.mp3", "stem_list": []},
         E.TOO_FEW_ITEMS, "stem_list"),
        ("audio-multistem-splitter", {"audio_url": "https://a.example/s.mp3",
                                      "stem_list": ["vocals", "kazoo"]},
         E.INVALID_CHOICE, "stem_list.1"),
    ],
)  # fmt: skip
def test_validation_errors(
    name: str, body: dict[str, Any], code: TaskErrorCode, param: str
) -> None:
    error = rejects(name, body)
    assert (error.code, error.param) == (code, param)
    assert error.http_status == 400
    assert param.split(".")[0] in error.message


def test_resolve_model_errors() -> None:
    def code(body: object, kind: Any = None) -> TaskErrorCode:
        with pytest.raises(TaskError) as info:
            resolve_model(CATALOG, body, kind)
        return info.value.code

    assert code([1, 2]) == E.MALFORMED_BODY
    assert code({"prompt": "x"}) == E.MISSING_PARAMETER
    assert code({"model": 3}) == E.WRONG_TYPE
    assert code({"model": "no-such-model"}) == E.UNKNOWN_MODEL
    assert code({"model": "gpt-image-2"}, "video") == E.WRONG_ENDPOINT
    assert resolve_model(CATALOG, {"model": "veo3.1-fast"}, "video").name == "veo3.1-fast"


async def test_resolving_url_check() -> None:
    resolver = StaticResolver({"cdn.example.com": ["93.184.216.34"], "evil.example": ["10.1.1.1"]})
    m = model("doubao-seedance-2.0")
    ok = validate_task_request(m, {"prompt": "x", "video_urls": ["https://cdn.example.com/v.mp4"]})
    await check_request_urls(m, ok, resolver=resolver)
    bad = validate_task_request(
        m,
        {"image_with_roles": [{"url": "https://evil.example/f.png", "role": "first_frame"}]},
    )
    with pytest.raises(TaskError) as info:
        await check_request_urls(m, bad, resolver=resolver)
    assert (info.value.code, info.value.param) == (
        E.PRIVATE_ADDRESS_REJECTED,
        "image_with_roles.0.url",
    )
    gone = validate_task_request(m, {"prompt": "x", "audio_urls": ["https://gone.example/a"]})
    with pytest.raises(TaskError) as info:
        await check_request_urls(m, gone, resolver=resolver)
    assert (info.value.code, info.value.param) == (E.UNRESOLVABLE_HOST, "audio_urls.0")


def test_allowlisted_loopback_passes_validation() -> None:
    policy = UrlPolicy.allowing("127.0.0.1")
    params = validate_task_request(
        model("audio-stem-separator"),
        {"audio_url": "http://127.0.0.1:8080/a.mp3", "stem": "vocals"},
        policy=policy,
    )
    assert params["audio_url"] == "http://127.0.0.1:8080/a.mp3"


def test_seedance_mode_follows_media_fields() -> None:
    m = model("doubao-seedance-2.0")

    def mode(body: dict[str, Any]) -> str | None:
        found = task_mode(m, validate_task_request(m, body))
        return found.name if found else None

    assert mode({"prompt": "x"}) == "t2v"
    assert mode({"image_urls": ["https://a.example/i.png"]}) == "i2v"
    assert (
        mode({"image_with_roles": [{"url": "https://a.example/f", "role": "first_frame"},
                                   {"url": "https://a.example/l", "role": "last_frame"}]})
        == "first_last_frame"
    )  # fmt: skip
    assert mode({"image_urls": ["https://a.example/i"], "video_urls": ["https://a.example/v"]}) == (
        "reference"
    )


# Pricing: exact integers for every unit.
def test_price_per_generation_by_resolution_tier() -> None:
    m = model("gpt-image-2")
    for tier, credits in (("1k", 20), ("2k", 35), ("4k", 60)):
        params = validate_task_request(m, {"prompt": "x", "resolution": tier})
        assert price(m, params) == credits * C
    veo = model("veo3.1-fast")
    assert price(veo, validate_task_request(veo, {"prompt": "x", "resolution": "4k"})) == 400 * C


def test_price_per_second_times_resolution() -> None:
    m = model("veo3.1-fast-official")
    p = validate_task_request(m, {"prompt": "x", "resolution": "1080p", "duration": 6})
    assert price(m, p) == 6 * 120 * C
    assert price(m, validate_task_request(m, {"prompt": "x"})) == 8 * 100 * C
    s = model("doubao-seedance-2.0")
    assert price(
        s, validate_task_request(s, {"prompt": "x", "duration": 15, "resolution": "4k"})
    ) == (15 * 420 * C)


def test_price_per_song_times_count() -> None:
    m = model("mureka-v9-song")
    assert price(m, validate_task_request(m, {"lyrics": "la"})) == 60 * C
    assert price(m, validate_task_request(m, {"lyrics": "la", "number_of_songs": 3})) == 180 * C


def test_price_per_rounded_up_source_minute() -> None:
    m = model("audio-stem-separator")
    p = validate_task_request(m, {"audio_url": "https://a.example/s.mp3", "stem": "vocals"})
    assert price(m, p, source_seconds=60) == 200 * C
    assert price(m, p, source_seconds=Decimal("60.001")) == 400 * C
    assert price(m, p, source_seconds=0) == 200 * C  # a started minute counts
    assert price(m, p, source_seconds=181) == 800 * C
    with pytest.raises(ValueError):
        price(m, p)
    assert m.needs_source_duration


def test_price_per_stem_minute() -> None:
    m = model("audio-multistem-splitter")
    p = validate_task_request(
        m, {"audio_url": "https://a.example/s.mp3", "stem_list": ["vocals", "drum", "bass"]}
    )
    assert price(m, p, source_seconds=61) == 2 * 3 * 200 * C
    assert source_minutes(Decimal("119.5")) == 2


def test_price_per_image_times_n_with_fractional_credits() -> None:
    models = load_task_models(
        {
            "tiny-image": {
                "kind": "image",
                "schema": {"prompt": "string", "n": {"type": "integer", "min": 1, "max": 4,
                                                      "default": 1}},
                "billing": {"unit": "image", "credits": "2.5"},
            }
        }
    )  # fmt: skip
    m = models["tiny-image"]
    assert price(m, validate_task_request(m, {"prompt": "x", "n": 3})) == 7_500_000
    assert price(m, validate_task_request(m, {"prompt": "x"})) == 2_500_000


def test_price_per_thousand_characters_is_exact_and_rounds_up_a_unit() -> None:
    m = model("espeak-tts")
    assert m.billing.unit == "thousand_characters"
    assert m.billing.credits == 1
    text = "Hello from reapi."  # 17 characters: 17/1000 of a credit
    assert price(m, validate_task_request(m, {"text": text})) == 17 * C // 1000
    assert price(m, validate_task_request(m, {"text": "é" * 5000})) == 5 * C  # code points
    models = load_task_models({"espeak-tts": {"kind": "audio", "billing": {"credits": "0.003"}}})
    # 7 characters at 0.003 credits per 1,000 cost 21 units exactly; 1 character at 0.0035
    # costs 3.5 units, and a started unit counts whole.
    assert price(models["espeak-tts"], {"text": "x" * 7}) == 21
    models = load_task_models({"espeak-tts": {"kind": "audio", "billing": {"credits": "0.0035"}}})
    assert price(models["espeak-tts"], {"text": "x"}) == 4


def test_speech_request_limits() -> None:
    assert rejects("espeak-tts", {}).code == E.MISSING_PARAMETER
    assert rejects("espeak-tts", {"text": ""}).code == E.BAD_LENGTH
    assert rejects("espeak-tts", {"text": "x" * 5001}).code == E.BAD_LENGTH
    assert rejects("espeak-tts", {"text": "hi", "voice": "klingon"}).code == E.INVALID_CHOICE
    assert rejects("espeak-tts", {"text": "hi", "speed": 451}).code == E.OUT_OF_RANGE
    params = validate_task_request(model("espeak-tts"), {"text": "hi", "voice": "FR-FR"})
    assert params == {"text": "hi", "voice": "fr-fr", "speed": 175, "pitch": 50}


def test_source_duration_limit() -> None:
    m = model("audio-stem-separator")
    check_source_duration(m, 1200, "audio_url")
    with pytest.raises(TaskError) as info:
        check_source_duration(m, 1201, "audio_url")
    assert (info.value.code, info.value.param) == (E.OUT_OF_RANGE, "audio_url")


# Operator overrides, written in YAML like the real config file.
OVERRIDES = yaml.safe_load(
    """
models:
  claude-sonnet-4-6: {input_usd_per_mtok: "3"}        # a chat model: not ours
  gpt-image-2: {kind: image, billing: {unit: generation, credits: "40"}}
  veo3.1-fast: {kind: video, billing: {credits: "350"}, schema: {image_urls: {max_items: 1}}}
  mureka-v9-song: {kind: audio, enabled: false}
  doubao-seedance-2.0: {kind: video, schema: {return_last_frame: null}}
  my-video:
    kind: video
    channel_type: fal
    timeout_seconds: 600
    billing: {unit: second, credits: {"720p": "163", "1080p": "288"}}
    schema:
      prompt: {type: string, required: true, max_length: 2500}
      resolution: {type: string, enum: [720p, 1080p], default: 1080p}
      duration: {type: integer, min: 3, max: 15, default: 5}
      first_frame_image: url
      seed: {type: integer, min: 0, max: 2147483647}
"""
)["models"]


def test_yaml_overrides_merge_over_builtins() -> None:
    models = load_task_models(OVERRIDES)
    assert "claude-sonnet-4-6" not in models
    assert "mureka-v9-song" not in models
    g = models["gpt-image-2"]
    # A flat price replaces the tiers; the tier field is no longer consulted.
    assert price(g, validate_task_request(g, {"prompt": "x", "resolution": "4k"})) == 40 * C
    veo = models["veo3.1-fast"]
    assert veo.billing.unit == "generation" and price(veo, {"prompt": "x"}) == 350 * C
    assert veo.schema["image_urls"].max_items == 1
    assert veo.schema["image_urls"].items is not None  # merged, not replaced
    assert "return_last_frame" not in models["doubao-seedance-2.0"].schema
    mine = models["my-video"]
    assert (mine.kind, mine.channel_type, mine.timeout_seconds) == ("video", "fal", 600)
    assert price(mine, validate_task_request(mine, {"prompt": "x"})) == 5 * 288 * C
    assert price(mine, validate_task_request(mine, {"prompt": "x", "resolution": "720p"})) == (
        5 * 163 * C
    )
    assert CATALOG["gpt-image-2"].billing.unit == "generation"  # built-ins untouched


def test_a_different_billing_unit_replaces_the_builtin_billing() -> None:
    models = load_task_models(
        {"veo3.1-fast-official": {"kind": "video", "billing": {"unit": "generation",
                                                                "credits": "500"}}}
    )  # fmt: skip
    m = models["veo3.1-fast-official"]
    assert (m.billing.unit, m.billing.tier_field, m.billing.duration_field) == (
        "generation",
        None,
        None,
    )
    assert price(m, validate_task_request(m, {"prompt": "x"})) == 500 * C


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"kind": "hologram", "billing": {"unit": "generation", "credits": "1"}}, "kind"),
        ({"kind": "image", "billing": "5"}, "billing is a map"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "upstream": {"fal": {"fields": {"size": "aspect_ratio"}}}}, "not a field"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"size": "string"}, "upstream": {"ftp": {"fields": {"size": "ar"}}}},
         "no task channel type"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"size": "string"}, "upstream": {"fal": {"rename": {"size": "ar"}}}},
         "'fields' and 'values' only"),
        ({"kind": "image", "billing": {"unit": "per_vibe", "credits": "1"}}, "unit"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": 0.1}}, "decimal string"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "0.0000001"}}, "6 decimal"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "-1"}}, "negative"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"x": {"type": "uuid"}}}, "type must be"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"x": {"type": "string", "maxlen": 3}}}, "unknown schema keys"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"x": {"type": "array"}}}, "items"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"x": {"type": "integer", "enum": ["a"]}}}, "enum value"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "schema": {"x": {"type": "integer", "max": 3, "default": 9}}}, "default"),
        ({"kind": "video", "billing": {"unit": "second", "credits": "1"},
          "schema": {"prompt": "string"}}, "duration"),
        ({"kind": "video", "billing": {"unit": "generation", "credits": {"720p": "1"}},
          "schema": {"resolution": {"type": "string", "enum": ["720p", "1080p"],
                                    "default": "720p"}}}, "no price for '1080p'"),
        ({"kind": "video", "billing": {"unit": "generation", "credits": {"720p": "1"}},
          "schema": {}}, "tier_field"),
        ({"kind": "video", "billing": {"unit": "generation", "credits": {"720p": "1"}},
          "schema": {"resolution": {"type": "string", "default": "720p"}}}, "needs an enum"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "modes": [{"name": "i2v", "when_any": ["image_urls"]}]}, "unknown field"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"}, "colour": "red"},
         "unknown keys"),
        ({"kind": "image", "billing": {"unit": "generation", "credits": "1"},
          "timeout_seconds": 0}, "timeout_seconds"),
        ({"kind": "audio", "billing": {"unit": "thousand_characters", "credits": "1"},
          "schema": {"text": {"type": "string"}}}, "required string field"),
        ({"kind": "audio", "billing": {"unit": "thousand_characters", "credits": "1",
                                       "count_field": "n"},
          "schema": {"n": {"type": "integer", "required": True}}}, "required string field"),
    ],
)  # fmt: skip
def test_bad_operator_config_fails_at_load(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CatalogError, match=fragment):
        load_task_models({"broken": entry})


def test_which_channels_may_serve_a_model() -> None:
    from reapi.services.tasks.catalog import serves

    veo = model("veo3.1-fast")
    assert serves(veo, "fal", ["veo3.1-fast"])
    assert serves(veo, "reapi", ["veo3.1-fast"])
    assert not serves(veo, "replicate", ["veo3.1-fast"])
    assert not serves(veo, "fal", ["gpt-image-2"])
    free = load_task_models(
        {"any": {"kind": "image", "billing": {"unit": "generation", "credits": "1"}}}
    )["any"]
    assert serves(free, "replicate", ["any"])
