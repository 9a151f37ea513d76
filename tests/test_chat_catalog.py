"""The built-in chat catalog: facts from the models' public pages, what pages need to show
(kind, capabilities, description, what is not public), and the operator's merge over it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from reapi.catalog import BUILTIN_CHAT_MODELS, CAPABILITIES
from reapi.config import ConfigError, build_config
from reapi.settings import Settings
from tests.conftest import Gateway, start_gateway
from tests.fakes.openai_upstream import FakeOpenAI

BUILTIN = build_config({}).chat_models


def test_every_builtin_is_a_described_chat_model_without_a_market_price() -> None:
    assert set(BUILTIN) == set(BUILTIN_CHAT_MODELS)
    for name, model in BUILTIN.items():
        assert model.kind == "chat" and model.description, name
        assert set(model.capabilities) <= set(CAPABILITIES)
        if name != "gemma-3-270m":  # the local demo model's demo price
            assert not model.priced, name


@pytest.mark.parametrize(
    ("name", "context", "output", "capabilities"),
    [
        ("claude-fable-5", 1_000_000, 128_000, {"thinking", "vision", "prompt_caching"}),
        ("claude-opus-4-8", 1_000_000, 128_000, {"vision", "prompt_caching", "tools"}),
        ("claude-sonnet-4-6", 1_000_000, 128_000, {"vision", "tools"}),
        ("gpt-5.5", 1_000_000, 128_000, {"thinking", "tools"}),
        ("minimax/minimax-m3", 1_000_000, 512_000,
         {"thinking", "vision", "video_input", "prompt_caching", "tools"}),
        ("deepseek-v4-flash", 1_000_000, 384_000,
         {"thinking", "vision", "tools", "prompt_caching"}),
        ("deepseek-v4-pro", 1_000_000, 384_000,
         {"thinking", "vision", "tools", "prompt_caching"}),
    ],
)  # fmt: skip
def test_published_facts(name: str, context: int, output: int, capabilities: set[str]) -> None:
    model = BUILTIN[name]
    assert (model.context_window, model.max_output_tokens) == (context, output)
    assert set(model.capabilities) == capabilities
    assert model.unknown == ()


def test_claude_sampling_ranges_and_gpt5_output_field() -> None:
    fable = BUILTIN["claude-fable-5"]
    assert (fable.temperature_range, fable.top_p_range) == ((0, 1), (0, 1))
    assert BUILTIN["gpt-5.5"].max_tokens_field == "max_completion_tokens"


def test_facts_not_public_are_named_not_invented() -> None:
    assert BUILTIN["gpt-5.4"].unknown == ("context_window", "max_output_tokens")
    assert "context_window" not in BUILTIN_CHAT_MODELS["gpt-5.4"]
    assert BUILTIN["claude-opus-4-7"].unknown == ("max_output_tokens",)
    assert BUILTIN["claude-opus-4-7"].capabilities == ()


def test_operator_entries_merge_field_by_field_and_settle_unknowns() -> None:
    models = build_config(
        {
            "models": {
                "gpt-5.4": {"context_window": 400_000, "input_per_mtok": "1"},
                "claude-fable-5": {"capabilities": ["vision"], "output_per_mtok": "75"},
                "text-embed-3": {"kind": "embedding", "description": "Embeddings."},
            }
        }
    ).chat_models
    gpt = models["gpt-5.4"]
    assert gpt.context_window == 400_000 and gpt.unknown == ("max_output_tokens",)
    assert gpt.max_tokens_field == "max_completion_tokens"  # the built-in's, kept
    fable = models["claude-fable-5"]
    assert fable.capabilities == ("vision",) and fable.max_output_tokens == 128_000
    assert fable.description == BUILTIN["claude-fable-5"].description
    assert models["text-embed-3"].kind == "embedding"


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"capabilities": ["telepathy"]}, "models.x.capabilities.0"),
        ({"kind": "embeding"}, None),  # an unknown kind is a task kind: refused there
    ],
)
def test_bad_chat_entries_fail_at_load(entry: dict[str, object], fragment: str | None) -> None:
    if fragment is None:
        config = build_config({"models": {"x": entry}})
        assert "x" in config.task_models and "x" not in config.chat_models
        return
    with pytest.raises(ConfigError, match=fragment):
        build_config({"models": {"x": entry}})


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, database_url: str) -> Iterator[Gateway]:
    config = build_config(
        {
            "channels": [
                {"name": "up", "type": "openai", "base_url": fake_openai.base_url,
                 "models": ["text-embed-3", "gpt-5.5"]},
            ],
            "models": {
                "text-embed-3": {"kind": "embedding", "free": True},
                "gpt-5.5": {"free": True},
            },
        }
    )  # fmt: skip
    gw = start_gateway(Settings(database_url=database_url), config)
    yield gw
    gw.server.stop()


def test_chat_endpoints_refuse_an_embedding_model(
    gateway: Gateway, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reset()
    key = gateway.key()
    headers = {"Authorization": f"Bearer {key}"}
    messages = [{"role": "user", "content": "Hi"}]
    openai_style = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers=headers,
        json={"model": "text-embed-3", "messages": messages},
    )
    assert openai_style.status_code == 400
    error = openai_style.json()["error"]
    assert error["param"] == "model" and "embedding model" in error["message"]
    assert openai_style.headers["x-request-id"]
    anthropic_style = httpx.post(
        gateway.url + "/v1/messages",
        headers=headers,
        json={"model": "text-embed-3", "max_tokens": 16, "messages": messages},
    )
    assert anthropic_style.status_code == 400
    body = anthropic_style.json()
    assert body["type"] == "error" and "embedding model" in body["error"]["message"]
    assert fake_openai.requests == []
    ok = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers=headers,
        json={"model": "gpt-5.5", "messages": messages},
    )
    assert ok.status_code == 200
