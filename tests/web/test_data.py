"""The data behind the pages: exact prices from the config, which models get pages, and the
examples generated for each kind of model."""

from __future__ import annotations

import ast
import json
import shlex
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reapi.cli import listen_url
from reapi.config import Config, build_config
from reapi.services.tasks.catalog import load_task_models, validate_task_request
from reapi.settings import Settings
from reapi.web.data import Site, build_site, chat_doc, decimal_text, navigation, usd
from reapi.web.examples import API_KEY, SAMPLE_MEDIA, TASK_ID, chat_examples, sample_body
from tests.web.conftest import site_config_raw

URL = "https://gw.example.com"


class _NoFakes:
    """Channel addresses only: no fake is started for these pure tests."""

    def __init__(self) -> None:
        for name in ("openai", "fal", "replicate", "reapi"):
            setattr(self, name, type("Fake", (), {"base_url": f"http://{name}.invalid"})())


def config(edit: Callable[[dict[str, Any]], None] | None = None) -> Config:
    fakes: Any = _NoFakes()
    raw = site_config_raw("http://openai.invalid/v1", fakes, Path("/nonexistent"), URL)
    if edit is not None:
        edit(raw)
    return build_config(raw)


def site_of(cfg: Config) -> Site:
    return build_site(cfg, load_task_models(cfg.task_models))


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("3", "$3.00"),
        ("10.00", "$10.00"),
        ("0.30", "$0.30"),
        ("0.0375", "$0.0375"),
        ("1E+1", "$10.00"),
        ("0.000000001", "$0.000000001"),
        ("5.625", "$5.625"),
    ],
)
def test_usd_prints_the_exact_decimal(amount: str, text: str) -> None:
    assert usd(Decimal(amount)) == text


def test_decimal_text_never_uses_exponents_or_rounds() -> None:
    assert decimal_text(Decimal("1.50")) == "1.5"
    assert decimal_text(Decimal("2E+3")) == "2000"
    assert decimal_text(Decimal("0.1") * 3) == "0.3"
    assert decimal_text(Decimal("123456789.123456789")) == "123456789.123456789"


def test_chat_rows_are_the_served_models_with_their_exact_rates() -> None:
    rows = {r.model: r.rates for r in site_of(config()).pricing.chat}
    # Built-in models no channel serves (gpt-5.4, the demo model) have no row.
    assert list(rows) == ["claude-sonnet-4-6", "gpt-5.5", "vendor/tiny-1"]
    claude = rows["claude-sonnet-4-6"]
    assert (claude.input, claude.output, claude.cache_read, claude.cache_write) == (
        "$3.00",
        "$15.00",
        "$0.30",
        "$3.75",
    )
    # Unset cache rates are billed at the input rate, so that is what the row says.
    gpt = rows["gpt-5.5"]
    assert (gpt.input, gpt.output, gpt.cache_read, gpt.cache_write) == (
        "$1.25",
        "$10.00",
        "$1.25",
        "$1.25",
    )
    assert rows["vendor/tiny-1"].input == "$0.0375"


def test_a_free_model_says_free() -> None:
    cfg = config(lambda raw: raw["models"]["vendor/tiny-1"].update(free=True))
    row = next(r for r in site_of(cfg).pricing.chat if r.model == "vendor/tiny-1")
    assert row.free
    assert row.rates.input == "Free"


def test_task_rows_give_credits_and_dollars_per_unit() -> None:
    rows = {r.model: r for r in site_of(config()).pricing.tasks}
    # Served by the test channels; audio-multistem-splitter is in the catalog but unserved.
    assert set(rows) == {
        "gpt-image-2",
        "veo3.1-fast",
        "veo3.1-fast-official",
        "mureka-v9-song",
        "audio-stem-separator",
        "doubao-seedance-2.0",
        "slow-video",
    }
    image = rows["gpt-image-2"]
    assert image.unit == "per generation"
    assert image.tier_field == "resolution"
    assert [(r.tier, r.credits, r.usd) for r in image.rates] == [
        ("1k", "20", "$0.02"),
        ("2k", "35", "$0.035"),
        ("4k", "60", "$0.06"),
    ]
    slow = rows["slow-video"]
    assert [(r.tier, r.credits, r.usd) for r in slow.rates] == [("", "7.5", "$0.0075")]
    assert rows["audio-stem-separator"].unit == "per minute of source audio"
    assert rows["mureka-v9-song"].unit == "per song"
    assert rows["veo3.1-fast-official"].unit == "per second of output"


def test_an_operator_price_override_shows_on_the_page() -> None:
    def cheaper(raw: dict[str, Any]) -> None:
        raw["models"]["gpt-image-2"] = {
            "kind": "image",
            "billing": {"credits": {"1k": "12.345678", "2k": "35", "4k": "60"}},
        }

    cfg = config(cheaper)
    row = next(r for r in site_of(cfg).pricing.tasks if r.model == "gpt-image-2")
    assert row.rates[0].credits == "12.345678"
    assert row.rates[0].usd == "$0.012345678"


def test_groups_carry_their_ratio_and_limits() -> None:
    groups = {g.name: g for g in site_of(config()).pricing.groups}
    assert groups["vip"].price_ratio == "1.5"
    assert (groups["default"].rpm, groups["default"].tpm, groups["default"].concurrency) == (
        "600",
        "2,000,000",
        "20",
    )
    assert groups["vip"].tpm == "no limit"


def test_a_chat_model_page_prices_it_in_each_group_that_serves_it() -> None:
    doc = site_of(config()).models["claude-sonnet-4-6"]
    vip = next(p for p in doc.prices if p.group == "vip")
    assert (vip.rates.input, vip.rates.output, vip.rates.cache_read, vip.rates.cache_write) == (
        "$4.50",
        "$22.50",
        "$0.45",
        "$5.625",
    )
    assert [g.name for g in doc.groups] == ["default", "vip"]
    facts = {f.label: f.value for f in doc.facts}
    assert facts["Context window"] == "1,000,000 tokens"
    assert facts["Max output per call"] == "128,000 tokens"
    assert facts["temperature range"] == "0 \u2013 1"
    assert [e.url for e in doc.endpoints][:2] == [
        f"{URL}/v1/chat/completions",
        f"{URL}/v1/messages",
    ]


def test_the_sidebar_groups_models_by_kind_in_the_seed_order() -> None:
    nav = site_of(config()).nav
    assert [g.label for g in nav] == ["Image", "Audio", "Video", "Chat"]
    assert [i.name for i in nav[3].items] == ["claude-sonnet-4-6", "gpt-5.5", "vendor/tiny-1"]
    assert nav[3].items[2].href == "/docs/models/vendor/tiny-1"


def test_task_parameters_come_from_the_schema() -> None:
    doc = site_of(config()).models["doubao-seedance-2.0"]
    fields = {f.name: f for f in doc.body}
    assert fields["model"].required
    assert fields["duration"].type == "integer"
    assert fields["duration"].default == "5"
    assert fields["duration"].constraints == "4 \u2013 15"
    assert "one of" in fields["resolution"].constraints
    assert '"4k"' in fields["resolution"].constraints
    assert fields["image_urls"].type == "array of url"
    roles = {c.name: c for c in fields["image_with_roles"].children}
    assert roles["role"].required
    assert '"first_frame"' in roles["role"].constraints
    assert [m.label for m in doc.modes] == ["reference", "first_last_frame", "i2v", "t2v"]
    assert doc.exclusive == ("image_urls and image_with_roles",)


def test_chat_examples_cover_each_language_and_sdk() -> None:
    doc = site_of(config()).models["gpt-5.5"]
    assert [(e.lang, e.sdk) for e in doc.examples] == [
        ("curl", None),
        ("python", "openai"),
        ("python", "anthropic"),
        ("typescript", "openai"),
        ("go", None),
    ]
    for example in doc.examples:
        assert API_KEY in example.code
        assert URL in example.code
    for example in doc.examples:
        if example.lang == "python":
            compile(example.code, "example.py", "exec")


def test_chat_examples_quote_any_model_name_safely() -> None:
    cfg = config()
    odd = cfg.chat_models["gpt-5.5"].model_copy(update={"name": 'it\'s "odd"/v1'})
    curl, openai_py, anthropic_py, *_ = chat_examples(odd, URL)
    argv = shlex.split(curl.code.replace("\\\n", " "))
    assert json.loads(argv[argv.index("-d") + 1])["model"] == odd.name
    for example in (openai_py, anthropic_py):
        tree = ast.parse(example.code)
        names = [
            kw.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            for kw in node.keywords
            if kw.arg == "model" and isinstance(kw.value, ast.Constant)
        ]
        assert names == [odd.name]


@pytest.mark.parametrize("name", sorted(load_task_models({})))
def test_every_builtin_task_model_gets_a_valid_sample_request(name: str) -> None:
    """The examples' body passes the model's own validation, whatever the catalog holds."""
    model = load_task_models({})[name]
    body = sample_body(model)
    validate_task_request(model, body)
    doc = build_site(config(), {name: model}).models.get(name)
    if doc is None:  # not served by the test channels
        return
    curl_submit, curl_poll, python, *_ = doc.examples
    assert (curl_submit.step, curl_poll.step) == ("submit", "poll")
    argv = shlex.split(curl_submit.code.replace("\\\n", " "))
    assert json.loads(argv[argv.index("-d") + 1]) == body
    assert TASK_ID in curl_poll.code
    compile(python.code, "example.py", "exec")
    for example in doc.examples:
        assert API_KEY in example.code
        assert f"{URL}/api/v1" in example.code


def test_media_inputs_get_a_placeholder_of_their_kind() -> None:
    stem = load_task_models({})["audio-stem-separator"]
    assert sample_body(stem)["audio_url"] == SAMPLE_MEDIA["audio"]
    assert sample_body(stem)["stem"] == "vocals"


def test_capabilities_description_and_unknown_facts_come_from_the_catalog() -> None:
    cfg = config()
    stated = cfg.chat_models["gpt-5.5"].model_copy(
        update={"capabilities": ("vision", "tools"), "description": "Written for this test."}
    )
    doc = chat_doc(stated, cfg, URL)
    assert doc.summary == "Written for this test."
    assert [(c.label, c.value) for c in doc.capabilities] == [
        ("Vision input", "yes"),
        ("Tool use", "yes"),
        ("Thinking", "no"),
        ("Prompt caching", "no"),
        ("Video input", "no"),
    ]
    silent = site_of(cfg).models["vendor/tiny-1"]
    assert {c.value for c in silent.capabilities} == {"not stated"}
    assert silent.summary == (
        "A chat model by vendor, served in the OpenAI and the Anthropic wire formats."
    )
    hidden = cfg.chat_models["gpt-5.5"].model_copy(update={"unknown": ("max_output_tokens",)})
    facts = {f.label: f.value for f in chat_doc(hidden, cfg, URL).facts}
    assert facts["Max output per call"] == "not public (the gateway assumes 128,000 tokens)"
    assert facts["Context window"] == "1,000,000 tokens"


def test_an_embedding_model_shows_no_chat_calls() -> None:
    cfg = config()
    embedding = cfg.chat_models["vendor/tiny-1"].model_copy(update={"kind": "embedding"})
    doc = chat_doc(embedding, cfg, URL)
    assert doc.kind_label == "Embedding"
    assert doc.examples == ()
    assert doc.endpoints == ()
    assert [g.label for g in navigation([doc])] == ["Embedding"]


def test_without_public_url_the_pages_use_the_address_serve_listens_on() -> None:
    unset = config(lambda raw: raw.pop("public_url"))
    assert build_site(unset, {}, "http://10.0.0.5:9000").url == "http://10.0.0.5:9000"
    assert build_site(unset, {}).url == "http://127.0.0.1:8000"
    # The operator's public_url wins over where the process happens to listen.
    assert build_site(config(), {}, "http://10.0.0.5:9000").url == URL
    assert listen_url("0.0.0.0", 8080) == "http://127.0.0.1:8080"
    assert listen_url("::1", 8000) == "http://[::1]:8000"
    assert listen_url("gw.internal", 80) == "http://gw.internal:80"
    environ = {"REAPI_LISTEN_URL": "http://10.0.0.5:9000/"}
    assert Settings.from_env(environ).listen_url == "http://10.0.0.5:9000"


def test_only_pages_with_a_sample_media_url_ask_to_replace_it() -> None:
    site = site_of(config())
    assert site.models["audio-stem-separator"].placeholder_media
    assert not site.models["gpt-image-2"].placeholder_media
