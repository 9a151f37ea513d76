"""Request translation both ways, checked against the target's own request schema."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from reapi.protocols.errors import InvalidRequest
from reapi.protocols.translate import anthropic_request_to_openai, openai_request_to_anthropic
from tests.schemas import assert_valid

from .conftest import validate_anthropic_request

PNG = "iVBORw0KGgo="


def to_anthropic(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 2048} | fields
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    out = openai_request_to_anthropic(body)
    validate_anthropic_request(out)
    return out


def to_openai(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-5.5", "max_tokens": 2048} | fields
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    out = anthropic_request_to_openai(body)
    assert_valid("CreateChatCompletionRequest", out)
    return out


def refused_to_anthropic(param: str, **fields: Any) -> str:
    with pytest.raises(InvalidRequest) as info:
        to_anthropic(**fields)
    assert info.value.param == param
    return info.value.message


def refused_to_openai(param: str, **fields: Any) -> str:
    with pytest.raises(InvalidRequest) as info:
        to_openai(**fields)
    assert info.value.param == param
    return info.value.message


class TestOpenAIToAnthropic:
    def test_system_and_developer_messages_become_system(self) -> None:
        out = to_anthropic(
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        )
        assert out["system"] == "Be brief."
        assert out["messages"] == [{"role": "user", "content": "Hi"}]

        out = to_anthropic(
            messages=[
                {"role": "system", "content": "One."},
                {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
                {"role": "user", "content": "Hi"},
            ]
        )
        assert out["system"] == [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]

    def test_http_image_urls_become_url_sources(self) -> None:
        content = [
            {"type": "text", "text": "What is this?"},
            {
                "type": "image_url",
                "image_url": {"url": "https://example.com/cat.png", "detail": "high"},
            },
        ]
        out = to_anthropic(messages=[{"role": "user", "content": content}])
        assert out["messages"][0]["content"] == [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        ]

    @pytest.mark.parametrize(
        ("header", "media_type"),
        [
            ("image/png", "image/png"),
            ("image/jpeg", "image/jpeg"),
            ("image/jpg", "image/jpeg"),
            ("image/gif", "image/gif"),
            ("IMAGE/WEBP", "image/webp"),
        ],
    )
    def test_data_urls_become_base64_sources(self, header: str, media_type: str) -> None:
        part = {"type": "image_url", "image_url": {"url": f"data:{header};base64,{PNG}"}}
        out = to_anthropic(messages=[{"role": "user", "content": [part]}])
        assert out["messages"][0]["content"] == [
            {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": PNG}}
        ]

    @pytest.mark.parametrize(
        "url",
        [
            "data:image/bmp;base64,AAAA",
            "data:image/png,rawbytes",
            "ftp://example.com/a.png",
            "cat.png",
        ],
    )
    def test_other_images_are_refused(self, url: str) -> None:
        part = {"type": "image_url", "image_url": {"url": url}}
        refused_to_anthropic(
            "messages[0].content[0].image_url.url", messages=[{"role": "user", "content": [part]}]
        )

    def test_unknown_content_parts_are_refused(self) -> None:
        part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
        message = refused_to_anthropic(
            "messages[0].content[0].type", messages=[{"role": "user", "content": [part]}]
        )
        assert "input_audio" in message

    def test_pdf_files_become_documents(self) -> None:
        part = {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        }
        out = to_anthropic(messages=[{"role": "user", "content": [part]}])
        assert out["messages"][0]["content"] == [
            {
                "type": "document",
                "title": "a.pdf",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            }
        ]
        refused_to_anthropic(
            "messages[0].content[0].file",
            messages=[
                {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}
            ],
        )

    def test_tool_calls_become_tool_use_and_tool_messages_tool_results(self) -> None:
        out = to_anthropic(
            messages=[
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "24C"}],
                },
                {"role": "user", "content": "Thanks, which is warmer?"},
            ]
        )
        assert out["messages"] == [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "call_2",
                        "name": "weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "24C"},
                    {"type": "text", "text": "Thanks, which is warmer?"},
                ],
            },
        ]

    def test_assistant_without_content_and_empty_arguments(self) -> None:
        out = to_anthropic(
            messages=[
                {"role": "user", "content": "Time?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "now", "arguments": ""},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c", "content": "noon"},
            ]
        )
        assert out["messages"][1] == {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c", "name": "now", "input": {}}],
        }

    @pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", "42"])
    def test_arguments_that_are_not_a_json_object_are_refused(self, arguments: str) -> None:
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}
        refused_to_anthropic(
            "messages[1].tool_calls[0].function.arguments",
            messages=[
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [call]},
            ],
        )

    def test_consecutive_same_role_turns_are_merged(self) -> None:
        out = to_anthropic(
            messages=[
                {"role": "user", "content": "one"},
                {"role": "user", "content": "two"},
                {"role": "assistant", "content": "three"},
                {"role": "assistant", "content": ""},
                {"role": "assistant", "content": "four"},
            ]
        )
        assert out["messages"] == [
            {
                "role": "user",
                "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}],
            },
        ]

    def test_tools_and_tool_choice(self) -> None:
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Get weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            },
            {"type": "function", "function": {"name": "now"}},
        ]
        out = to_anthropic(tools=tools)
        assert out["tools"] == [
            {
                "name": "weather",
                "description": "Get weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
            {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        ]
        assert "tool_choice" not in out
        assert to_anthropic(tools=tools, tool_choice="auto")["tool_choice"] == {"type": "auto"}
        assert to_anthropic(tools=tools, tool_choice="none")["tool_choice"] == {"type": "none"}
        assert to_anthropic(tools=tools, tool_choice="required")["tool_choice"] == {"type": "any"}
        named = {"type": "function", "function": {"name": "now"}}
        assert to_anthropic(tools=tools, tool_choice=named)["tool_choice"] == {
            "type": "tool",
            "name": "now",
        }
        assert to_anthropic(tools=tools, parallel_tool_calls=False)["tool_choice"] == {
            "type": "auto",
            "disable_parallel_tool_use": True,
        }
        assert to_anthropic(tools=tools, tool_choice="required", parallel_tool_calls=False)[
            "tool_choice"
        ] == {"type": "any", "disable_parallel_tool_use": True}
        assert "tool_choice" not in to_anthropic(tools=tools, parallel_tool_calls=True)

    def test_custom_tools_become_tools_taking_one_string(self) -> None:
        grammar = {"type": "grammar", "grammar": {"syntax": "regex", "definition": "[0-9]+"}}
        out = to_anthropic(
            tools=[
                {"type": "custom", "custom": {"name": "digits", "format": grammar}},
                {"type": "custom", "custom": {"name": "say", "description": "Says it."}},
            ],
            tool_choice={"type": "custom", "custom": {"name": "say"}},
            messages=[
                {"role": "user", "content": "Go"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "custom", "custom": {"name": "say", "input": "hi"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "said"},
            ],
        )
        digits, say = out["tools"]
        assert digits["input_schema"]["required"] == ["input"]
        assert digits["input_schema"]["additionalProperties"] is False
        described = digits["input_schema"]["properties"]["input"]["description"]
        assert "regex grammar:\n[0-9]+" in described
        assert say["description"] == "Says it."
        assert out["tool_choice"] == {"type": "tool", "name": "say"}
        assert out["messages"][1]["content"] == [
            {"type": "tool_use", "id": "c1", "name": "say", "input": {"input": "hi"}}
        ]

    @pytest.mark.parametrize(("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"])])
    def test_stop_becomes_stop_sequences(self, stop: Any, expected: list[str]) -> None:
        assert to_anthropic(stop=stop)["stop_sequences"] == expected
        assert "stop_sequences" not in to_anthropic(stop=None)

    @pytest.mark.parametrize("stop", ["\n", ["END", " "], [""]])
    def test_whitespace_stop_sequences_are_refused(self, stop: Any) -> None:
        assert "whitespace" in refused_to_anthropic("stop", stop=stop)

    def test_sampling_user_and_max_tokens(self) -> None:
        out = to_anthropic(temperature=0.2, top_p=0.9, user="user-42", max_completion_tokens=777)
        assert (out["temperature"], out["top_p"]) == (0.2, 0.9)
        assert out["metadata"] == {"user_id": "user-42"}
        assert out["max_tokens"] == 777
        assert to_anthropic()["max_tokens"] == 2048
        assert to_anthropic(safety_identifier="s-1")["metadata"] == {"user_id": "s-1"}

    @pytest.mark.parametrize(
        ("effort", "budget"),
        [("low", 1024), ("medium", 4096), ("high", 16384), ("xhigh", 32768), ("max", 65536)],
    )
    def test_reasoning_effort_becomes_a_thinking_budget(self, effort: str, budget: int) -> None:
        out = to_anthropic(reasoning_effort=effort, max_tokens=128000, temperature=0.3)
        assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in out  # Anthropic refuses sampling changes with thinking

    def test_thinking_budget_stays_below_max_tokens(self) -> None:
        assert (
            to_anthropic(reasoning_effort="high", max_tokens=5000)["thinking"]["budget_tokens"]
            == 4999
        )
        assert "thinking" not in to_anthropic(reasoning_effort="low", max_tokens=1024)

    @pytest.mark.parametrize("effort", ["none", "minimal"])
    def test_no_thinking_for_the_lowest_efforts(self, effort: str) -> None:
        assert "thinking" not in to_anthropic(reasoning_effort=effort, temperature=0.5)

    def test_no_thinking_where_anthropic_would_refuse_it(self) -> None:
        tools = [{"type": "function", "function": {"name": "f"}}]
        assert "thinking" not in to_anthropic(
            reasoning_effort="high", tools=tools, tool_choice="required"
        )
        loop = [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "done"},
        ]
        assert "thinking" not in to_anthropic(reasoning_effort="high", tools=tools, messages=loop)

    def test_json_schema_response_format_becomes_output_format(self) -> None:
        schema = {"type": "object", "properties": {"a": {"type": "string"}}}
        out = to_anthropic(
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
        )
        assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
        assert "output_config" not in to_anthropic(response_format={"type": "json_object"})

    def test_stream_flag_passes(self) -> None:
        assert to_anthropic(stream=True, stream_options={"include_usage": True})["stream"] is True
        assert "stream" not in to_anthropic(stream=False)

    @pytest.mark.parametrize(
        ("fields", "param"),
        [
            ({"n": 2}, "n"),
            ({"functions": [{"name": "f"}]}, "functions"),
            ({"function_call": "auto"}, "function_call"),
            ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
            ({"reasoning_effort": "extreme"}, "reasoning_effort"),
            ({"reasoning_effort": ["high"]}, "reasoning_effort"),
            ({"tool_choice": {"type": "function", "function": ["f"]}}, "tool_choice"),
            (
                {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": []}]}]},
                "messages[0].tool_calls[0].function",
            ),
            (
                {
                    "tools": [{"type": "function", "function": {"name": "f"}}],
                    "tool_choice": {"type": "allowed_tools", "allowed_tools": {}},
                },
                "tool_choice",
            ),
        ],
    )
    def test_what_cannot_be_carried_is_refused(self, fields: dict[str, Any], param: str) -> None:
        refused_to_anthropic(param, **fields)

    def test_temperature_outside_anthropics_range_is_refused(self) -> None:
        assert to_anthropic(temperature=1)["temperature"] == 1
        refused_to_anthropic("temperature", temperature=1.5)

    def test_a_conversation_with_nothing_to_say_is_refused(self) -> None:
        refused_to_anthropic(
            "messages",
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": ""}],
        )

    def test_dropped_fields_do_not_leak(self) -> None:
        out = to_anthropic(
            seed=1,
            frequency_penalty=0.5,
            presence_penalty=0.1,
            logit_bias={"1": 2},
            store=True,
            metadata={"a": "b"},
            service_tier="auto",
            n=1,
        )
        assert set(out) == {"model", "max_tokens", "messages"}


class TestAnthropicToOpenAI:
    def test_system_string_blocks_and_inline_system(self) -> None:
        out = to_openai(system="Be brief.")
        assert out["messages"][0] == {"role": "system", "content": "Be brief."}
        out = to_openai(
            system=[
                {"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "B"},
            ],
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Yo"},
                {"role": "system", "content": "Reminder"},
                {"role": "user", "content": "Go"},
            ],
        )
        assert out["messages"] == [
            {
                "role": "system",
                "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            },
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Yo"},
            {"role": "system", "content": "Reminder"},
            {"role": "user", "content": "Go"},
        ]

    def test_images_become_image_url_parts(self) -> None:
        content = [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            {"type": "text", "text": "Compare"},
        ]
        out = to_openai(messages=[{"role": "user", "content": content}])
        assert out["messages"][0]["content"] == [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            {"type": "text", "text": "Compare"},
        ]

    def test_tool_use_and_tool_results(self) -> None:
        out = to_openai(
            messages=[
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Use the tool.", "signature": "sig"},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "weather",
                            "input": {"city": "Paris"},
                        },
                        {
                            "type": "tool_use",
                            "id": "toolu_2",
                            "name": "weather",
                            "input": {"city": "Rome"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "is_error": True,
                            "content": [{"type": "text", "text": "timeout"}],
                        },
                        {"type": "text", "text": "And?"},
                    ],
                },
            ]
        )
        assert out["messages"][1:] == [
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: timeout"},
            {"role": "user", "content": "And?"},
        ]

    def test_an_assistant_turn_of_only_thinking_is_left_out(self) -> None:
        out = to_openai(
            messages=[
                {"role": "user", "content": "a"},
                {
                    "role": "assistant",
                    "content": [{"type": "thinking", "thinking": "t", "signature": "s"}],
                },
                {"role": "user", "content": "b"},
            ]
        )
        assert out["messages"] == [
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
        ]

    def test_images_in_tool_results_follow_in_a_user_turn(self) -> None:
        image = {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
        }
        out = to_openai(
            messages=[
                {"role": "user", "content": "Screenshot please"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "shot", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "here"}, image],
                        }
                    ],
                },
            ]
        )
        assert out["messages"][2:] == [
            {"role": "tool", "tool_call_id": "t1", "content": "here"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "(images returned by tool call t1)"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
        ]

    def test_documents(self) -> None:
        content = [
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
            },
            {
                "type": "document",
                "title": "r.pdf",
                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            },
        ]
        out = to_openai(messages=[{"role": "user", "content": content}])
        assert out["messages"][0]["content"] == [
            {"type": "text", "text": "notes"},
            {
                "type": "file",
                "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"},
            },
        ]
        url_doc = {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
        refused_to_openai(
            "messages.0.content.0.source", messages=[{"role": "user", "content": [url_doc]}]
        )

    def test_tools_and_tool_choice(self) -> None:
        tools = [
            {
                "name": "weather",
                "description": "Get weather",
                "input_schema": {"type": "object"},
                "cache_control": {"type": "ephemeral"},
            }
        ]
        out = to_openai(tools=tools)
        assert out["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Get weather",
                    "parameters": {"type": "object"},
                },
            }
        ]
        assert to_openai(tools=tools, tool_choice={"type": "any"})["tool_choice"] == "required"
        assert to_openai(tools=tools, tool_choice={"type": "auto"})["tool_choice"] == "auto"
        assert to_openai(tools=tools, tool_choice={"type": "none"})["tool_choice"] == "none"
        assert to_openai(tools=tools, tool_choice={"type": "tool", "name": "weather"})[
            "tool_choice"
        ] == {"type": "function", "function": {"name": "weather"}}
        out = to_openai(
            tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True}
        )
        assert out["parallel_tool_calls"] is False

    def test_server_tools_are_refused(self) -> None:
        message = refused_to_openai(
            "tools.0.type", tools=[{"type": "web_search_20250305", "name": "web_search"}]
        )
        assert "web_search_20250305" in message

    @pytest.mark.parametrize(
        "block",
        [
            {"type": "search_result", "source": "s", "title": "t", "content": []},
            {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}},
            {"type": "image", "source": {"type": "file", "file_id": "f"}},
        ],
    )
    def test_untranslatable_blocks_are_refused(self, block: dict[str, Any]) -> None:
        with pytest.raises(InvalidRequest) as info:
            to_openai(messages=[{"role": "user", "content": [block]}])
        assert info.value.param is not None and info.value.param.startswith("messages.0.content.0")

    def test_sampling_stop_user_stream_and_dropped_fields(self) -> None:
        out = to_openai(
            temperature=0.5,
            top_p=0.8,
            top_k=40,
            stop_sequences=["END"],
            metadata={"user_id": "u-1"},
            stream=True,
            thinking={"type": "enabled", "budget_tokens": 2048},
            context_management={"edits": []},
            service_tier="auto",
        )
        assert out == {
            "model": "gpt-5.5",
            "max_tokens": 2048,
            "messages": [{"role": "user", "content": "Hi"}],
            "temperature": 0.5,
            "top_p": 0.8,
            "stop": ["END"],
            "user": "u-1",
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    def test_output_format_becomes_response_format(self) -> None:
        schema = {"type": "object"}
        out = to_openai(
            output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "high"}
        )
        assert out["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema},
        }


def test_arguments_keep_unicode_and_nesting() -> None:
    args = {"q": "Zürich ☃", "nested": {"list": [1, 2.5, None, True]}}
    out = to_openai(
        messages=[
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": args}],
            },
        ]
    )
    assert orjson.loads(out["messages"][1]["tool_calls"][0]["function"]["arguments"]) == args
