"""Whole (non-streaming) responses both ways, checked with the client side's own schema/types."""

from __future__ import annotations

from typing import Any

import anthropic.types as at
import orjson
import pytest

from reapi.protocols.translate import anthropic_response_to_openai, openai_response_to_anthropic
from tests.schemas import assert_valid


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6-20260101",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5} | usage,
    }


def openai_completion(
    message: dict[str, Any], finish_reason: str = "stop", **extra: Any
) -> dict[str, Any]:
    choice = {
        "index": 0,
        "message": {"role": "assistant"} | message,
        "finish_reason": finish_reason,
    } | extra
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "deepseek-v4-flash",
        "choices": [choice],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


def to_openai(body: dict[str, Any]) -> dict[str, Any]:
    out = anthropic_response_to_openai(
        body, model="claude-sonnet-4-6", completion_id="chatcmpl-gw", created=1_700_000_000
    )
    assert_valid("CreateChatCompletionResponse", out)
    return out


def to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    out = openai_response_to_anthropic(body, model="deepseek-v4-flash", message_id="msg_gw")
    at.Message.model_validate(out)
    return out


class TestAnthropicToOpenAI:
    def test_text_and_tool_use(self) -> None:
        out = to_openai(
            anthropic_message(
                [
                    {"type": "text", "text": "Let me check. "},
                    {"type": "text", "text": "One moment."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                    {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}},
                ],
                "tool_use",
            )
        )
        assert out["id"] == "chatcmpl-gw"  # never the upstream's msg_ id
        assert out["model"] == "claude-sonnet-4-6"
        assert out["created"] == 1_700_000_000
        [choice] = out["choices"]
        assert choice["finish_reason"] == "tool_calls"
        message = choice["message"]
        assert message["content"] == "Let me check. One moment."
        assert message["tool_calls"] == [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "toolu_2", "type": "function", "function": {"name": "time", "arguments": "{}"}},
        ]

    def test_only_tool_use_gives_null_content(self) -> None:
        out = to_openai(
            anthropic_message(
                [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}], "tool_use"
            )
        )
        assert out["choices"][0]["message"]["content"] is None

    def test_thinking_becomes_reasoning_content(self) -> None:
        out = to_openai(
            anthropic_message(
                [
                    {"type": "thinking", "thinking": "Two plus two.", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "xxx"},
                    {"type": "text", "text": "4"},
                ]
            )
        )
        message = out["choices"][0]["message"]
        assert message["reasoning_content"] == "Two plus two."
        assert message["content"] == "4"

    @pytest.mark.parametrize(
        ("stop_reason", "finish_reason"),
        [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
            ("model_context_window_exceeded", "length"),
        ],
    )
    def test_stop_reasons(self, stop_reason: str, finish_reason: str) -> None:
        out = to_openai(anthropic_message([{"type": "text", "text": "x"}], stop_reason))
        assert out["choices"][0]["finish_reason"] == finish_reason

    def test_usage_counts_cache_reads_and_writes_as_prompt(self) -> None:
        out = to_openai(
            anthropic_message(
                [{"type": "text", "text": "x"}],
                input_tokens=100,
                cache_read_input_tokens=50,
                cache_creation_input_tokens=25,
                output_tokens=10,
            )
        )
        assert out["usage"] == {
            "prompt_tokens": 175,
            "completion_tokens": 10,
            "total_tokens": 185,
            "prompt_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 25},
        }

    def test_unnamed_tool_calls_are_named_after_the_completion(self) -> None:
        out = to_openai(
            anthropic_message(
                [
                    {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}},
                    {"type": "tool_use", "name": "b", "input": {}},
                    {"type": "tool_use", "id": "", "name": "c", "input": {}},
                ],
                "tool_use",
            )
        )
        ids = [c["id"] for c in out["choices"][0]["message"]["tool_calls"]]
        assert ids == ["toolu_1", "chatcmpl-gw_call_1", "chatcmpl-gw_call_2"]


class TestOpenAIToAnthropic:
    def test_text_and_tool_calls(self) -> None:
        out = to_anthropic(
            openai_completion(
                {
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "time", "arguments": ""},
                        },
                    ],
                },
                "tool_calls",
            )
        )
        assert out["id"] == "msg_gw"  # never the upstream's chatcmpl- id
        assert out["model"] == "deepseek-v4-flash"
        assert out["content"] == [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "time", "input": {}},
        ]
        assert out["stop_reason"] == "tool_use"
        assert out["stop_sequence"] is None

    def test_unnamed_tool_calls_are_named_after_the_message(self) -> None:
        calls = [
            {"type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "call_9", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ]
        out = to_anthropic(openai_completion({"tool_calls": calls}, "tool_calls"))
        assert [b["id"] for b in out["content"]] == ["msg_gw_call_0", "call_9"]

    def test_reasoning_content_becomes_a_leading_thinking_block(self) -> None:
        out = to_anthropic(openai_completion({"content": "4", "reasoning_content": "2+2"}))
        assert out["content"] == [
            {"type": "thinking", "thinking": "2+2", "signature": ""},
            {"type": "text", "text": "4"},
        ]

    @pytest.mark.parametrize(
        ("finish_reason", "stop_reason"),
        [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("content_filter", "refusal"),
            ("function_call", "tool_use"),
        ],
    )
    def test_finish_reasons(self, finish_reason: str, stop_reason: str) -> None:
        assert (
            to_anthropic(openai_completion({"content": "x"}, finish_reason))["stop_reason"]
            == stop_reason
        )

    def test_a_stop_sequence_the_server_names_is_kept(self) -> None:
        out = to_anthropic(openai_completion({"content": "x"}, "stop", stop_reason="END"))
        assert (out["stop_reason"], out["stop_sequence"]) == ("stop_sequence", "END")

    def test_usage_separates_cached_input(self) -> None:
        body = openai_completion({"content": "x"})
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": 40}
        assert to_anthropic(body)["usage"] == {
            "input_tokens": 60,
            "output_tokens": 20,
            "cache_read_input_tokens": 40,
            "cache_creation_input_tokens": 0,
        }

    def test_broken_arguments_from_the_model_stay_visible(self) -> None:
        out = to_anthropic(
            openai_completion(
                {
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": '},
                        }
                    ]
                },
                "tool_calls",
            )
        )
        assert out["content"] == [
            {"type": "tool_use", "id": "c", "name": "f", "input": {"_invalid_json": '{"a": '}}
        ]

    def test_refusal_becomes_text_with_a_refusal_stop(self) -> None:
        out = to_anthropic(
            openai_completion({"content": None, "refusal": "I can't help with that."})
        )
        assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
        assert out["stop_reason"] == "refusal"

    def test_an_empty_answer_is_an_empty_content_list(self) -> None:
        out = to_anthropic(openai_completion({"content": ""}))
        assert out["content"] == []
        assert orjson.dumps(out)  # serialisable as is
