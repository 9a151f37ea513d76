"""Stream translation both ways. Upstream bytes go through ``SSEDecoder`` one byte at a time;
the client side is decoded the same way, checked event by event with the official schema/types,
and reassembled with each SDK's own stream accumulator."""

from __future__ import annotations

from typing import Any

import anthropic.types as at
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from reapi.protocols.sse import SSEDecoder
from reapi.protocols.translate import (
    StreamTranslator,
    anthropic_stream_to_openai,
    openai_stream_to_anthropic,
)
from tests.schemas import assert_valid

from .conftest import decode_bytewise, sse, validate_anthropic_event


def pump(translator: StreamTranslator, upstream: bytes) -> list[bytes]:
    decoder = SSEDecoder()
    out: list[bytes] = []
    for byte in upstream:
        for event in decoder.feed(bytes([byte])):
            out += translator.feed(event)
    for event in decoder.close():
        out += translator.feed(event)
    return out


def anthropic_upstream(*events: dict[str, Any]) -> bytes:
    return b"".join(sse(e, e["type"]) for e in events)


def openai_upstream(*chunks: dict[str, Any] | bytes) -> bytes:
    return b"".join(sse(c) for c in chunks)


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 120, "cache_read_input_tokens": 30, "output_tokens": 1},
    },
}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, output_tokens: int = 42, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": extra.pop("stop_sequence", None)},
        "usage": {"output_tokens": output_tokens} | extra,
    }


MESSAGE_STOP = {"type": "message_stop"}
PING = {"type": "ping"}


class OpenAIClientView:
    """What an OpenAI client sees: validated chunks, the SDK's final completion, the end."""

    def __init__(self, out: list[bytes]) -> None:
        self.chunks: list[dict[str, Any]] = []
        self.done = False
        self.error: dict[str, Any] | None = None
        state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
        for event in decode_bytewise(out):
            assert not self.done and self.error is None, "nothing may follow [DONE] or an error"
            if event.data == b"[DONE]":
                self.done = True
                continue
            data = orjson.loads(event.data)
            if "error" in data:
                assert_valid("ErrorResponse", data)
                self.error = data["error"]
                continue
            assert_valid("CreateChatCompletionStreamResponse", data)
            self.chunks.append(data)
            state.handle_chunk(ChatCompletionChunk.model_validate(data))
        self.state = state

    @property
    def final(self) -> Any:
        return self.state.get_final_completion()

    def deltas(self) -> list[dict[str, Any]]:
        return [c["choices"][0]["delta"] for c in self.chunks if c["choices"]]

    def text(self, field: str = "content") -> str:
        return "".join(d.get(field) or "" for d in self.deltas())

    def finish_reasons(self) -> list[str]:
        return [
            c["choices"][0]["finish_reason"]
            for c in self.chunks
            if c["choices"] and c["choices"][0]["finish_reason"]
        ]


class AnthropicClientView:
    """What an Anthropic client sees: SDK-validated events in the documented order, and the
    message the SDK's own accumulator builds from them."""

    def __init__(self, out: list[bytes]) -> None:
        self.events = [validate_anthropic_event(e) for e in decode_bytewise(out)]
        self.message: Any = None
        bufs: dict[int, bytes] = {}
        for data in self.events:
            if data["type"] not in ("ping", "error"):
                self.message = accumulate_event(
                    event=data, current_snapshot=self.message, json_bufs=bufs
                )  # type: ignore[arg-type]
        self._check_order()

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def _check_order(self) -> None:
        if not self.events or self.events[0]["type"] == "error":
            assert len(self.events) <= 1
            return
        assert self.events[0]["type"] == "message_start"
        assert self.events[1]["type"] == "ping"
        next_index, open_index, delta_seen = 0, None, False
        for i, event in enumerate(self.events[2:], start=2):
            kind = event["type"]
            last = i == len(self.events) - 1
            if kind == "content_block_start":
                assert open_index is None and event["index"] == next_index and not delta_seen
                open_index = next_index
            elif kind == "content_block_delta":
                assert event["index"] == open_index
            elif kind == "content_block_stop":
                assert event["index"] == open_index
                open_index, next_index = None, next_index + 1
            elif kind == "message_delta":
                assert open_index is None
                delta_seen = True
            elif kind in ("message_stop", "error"):
                assert last and (kind == "error" or delta_seen)
            elif kind != "ping":
                raise AssertionError(f"unexpected event {kind}")

    def blocks(self) -> list[dict[str, Any]]:
        return [b.to_dict() for b in self.message.content]


def to_openai(
    upstream: bytes, *, include_usage: bool = True
) -> tuple[StreamTranslator, OpenAIClientView]:
    translator = anthropic_stream_to_openai(
        model="claude-sonnet-4-6",
        include_usage=include_usage,
        completion_id="chatcmpl-9",
        created=1_700_000_000,
    )
    return translator, OpenAIClientView(pump(translator, upstream))


def to_anthropic(upstream: bytes) -> tuple[StreamTranslator, AnthropicClientView]:
    translator = openai_stream_to_anthropic(
        model="deepseek-v4-flash", message_id="msg_gw1", estimated_input_tokens=77
    )
    return translator, AnthropicClientView(pump(translator, upstream))


class TestAnthropicUpstreamToOpenAIClient:
    def test_text_and_thinking_with_usage(self) -> None:
        translator, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                PING,
                block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
                block_delta(0, {"type": "thinking_delta", "thinking": "Let me think"}),
                block_delta(0, {"type": "signature_delta", "signature": "sig"}),
                block_stop(0),
                block_start(1, {"type": "text", "text": ""}),
                block_delta(1, {"type": "text_delta", "text": "Grüße aus "}),
                PING,
                block_delta(1, {"type": "text_delta", "text": "Zürich ☃ 🎉"}),
                block_stop(1),
                message_delta("end_turn", 42),
                MESSAGE_STOP,
            )
        )
        first = view.chunks[0]
        assert first["choices"][0]["delta"]["role"] == "assistant"
        assert all(c["id"] == "chatcmpl-9" and c["created"] == 1_700_000_000 for c in view.chunks)
        assert all(c["model"] == "claude-sonnet-4-6" for c in view.chunks)
        assert view.text() == "Grüße aus Zürich ☃ 🎉"
        assert view.text("reasoning_content") == "Let me think"
        assert view.finish_reasons() == ["stop"]
        usage_chunk = view.chunks[-1]
        assert usage_chunk["choices"] == []
        assert usage_chunk["usage"] == {
            "prompt_tokens": 150,
            "completion_tokens": 42,
            "total_tokens": 192,
            "prompt_tokens_details": {"cached_tokens": 30},
        }
        assert view.done and view.error is None
        assert view.final.choices[0].message.content == "Grüße aus Zürich ☃ 🎉"
        assert translator.finished
        assert translator.usage is not None and translator.usage.prompt_tokens == 150
        assert translator.output_chars == len("Let me think") + len("Grüße aus Zürich ☃ 🎉")

    def test_without_include_usage_there_is_no_usage_chunk(self) -> None:
        _, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                block_start(0, {"type": "text", "text": ""}),
                block_delta(0, {"type": "text_delta", "text": "hi"}),
                block_stop(0),
                message_delta("max_tokens"),
                MESSAGE_STOP,
            ),
            include_usage=False,
        )
        assert all("usage" not in c for c in view.chunks)
        assert view.finish_reasons() == ["length"]
        assert view.done

    def test_a_tool_use_without_id_gets_one(self) -> None:
        _, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                block_start(0, {"type": "tool_use", "id": "toolu_A", "name": "a", "input": {}}),
                block_stop(0),
                block_start(1, {"type": "tool_use", "name": "b", "input": {}}),
                block_stop(1),
                message_delta("tool_use"),
                MESSAGE_STOP,
            )
        )
        calls = [tc for d in view.deltas() for tc in d.get("tool_calls", [])]
        assert [c["id"] for c in calls] == ["toolu_A", "chatcmpl-9_call_1"]

    def test_parallel_tool_calls_get_stable_indexes(self) -> None:
        translator, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                block_start(0, {"type": "text", "text": ""}),
                block_delta(0, {"type": "text_delta", "text": "Checking both."}),
                block_stop(0),
                block_start(
                    1, {"type": "tool_use", "id": "toolu_A", "name": "weather", "input": {}}
                ),
                block_delta(1, {"type": "input_json_delta", "partial_json": ""}),
                block_delta(1, {"type": "input_json_delta", "partial_json": '{"city": "Pa'}),
                block_delta(1, {"type": "input_json_delta", "partial_json": 'ris"}'}),
                block_stop(1),
                block_start(2, {"type": "tool_use", "id": "toolu_B", "name": "time", "input": {}}),
                block_delta(2, {"type": "input_json_delta", "partial_json": '{"tz": "CET"}'}),
                block_stop(2),
                message_delta("tool_use"),
                MESSAGE_STOP,
            )
        )
        calls = [tc for d in view.deltas() for tc in d.get("tool_calls", [])]
        assert [c["index"] for c in calls] == [0, 0, 0, 1, 1]
        assert calls[0] == {
            "index": 0,
            "id": "toolu_A",
            "type": "function",
            "function": {"name": "weather", "arguments": ""},
        }
        assert calls[3]["id"] == "toolu_B" and calls[3]["function"]["name"] == "time"
        assert all("id" not in c for c in calls[1:3] + calls[4:])
        final = view.final.choices[0].message
        assert [
            (t.id, t.function.name, orjson.loads(t.function.arguments)) for t in final.tool_calls
        ] == [
            ("toolu_A", "weather", {"city": "Paris"}),
            ("toolu_B", "time", {"tz": "CET"}),
        ]
        assert view.finish_reasons() == ["tool_calls"]
        assert translator.output_chars == len("Checking both.") + len('{"city": "Paris"}') + len(
            '{"tz": "CET"}'
        )

    def test_interleaved_tool_input_deltas_keep_their_index(self) -> None:
        _, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                block_start(0, {"type": "tool_use", "id": "toolu_A", "name": "a", "input": {}}),
                block_start(1, {"type": "tool_use", "id": "toolu_B", "name": "b", "input": {}}),
                block_delta(1, {"type": "input_json_delta", "partial_json": '{"y":'}),
                block_delta(0, {"type": "input_json_delta", "partial_json": '{"x":'}),
                block_delta(0, {"type": "input_json_delta", "partial_json": " 1}"}),
                block_delta(1, {"type": "input_json_delta", "partial_json": " 2}"}),
                block_stop(0),
                block_stop(1),
                message_delta("tool_use"),
                MESSAGE_STOP,
            )
        )
        calls = view.final.choices[0].message.tool_calls
        assert [(t.id, orjson.loads(t.function.arguments)) for t in calls] == [
            ("toolu_A", {"x": 1}),
            ("toolu_B", {"y": 2}),
        ]

    @pytest.mark.parametrize(
        ("stop_reason", "finish"),
        [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
            ("pause_turn", "stop"),
        ],
    )
    def test_stop_reasons(self, stop_reason: str, finish: str) -> None:
        _, view = to_openai(
            anthropic_upstream(MESSAGE_START, message_delta(stop_reason), MESSAGE_STOP)
        )
        assert view.finish_reasons() == [finish]

    def test_an_upstream_error_event_becomes_an_error_chunk_without_done(self) -> None:
        translator, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                block_start(0, {"type": "text", "text": ""}),
                block_delta(0, {"type": "text_delta", "text": "Hel"}),
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
                block_delta(0, {"type": "text_delta", "text": "lo"}),
            )
        )
        assert view.error == {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": None,
        }
        assert not view.done
        assert view.text() == "Hel"
        assert not translator.finished
        assert translator.usage is None

    def test_error_from_the_gateway_is_never_a_normal_end(self) -> None:
        translator = anthropic_stream_to_openai(
            model="m", include_usage=True, completion_id="c", created=1
        )
        out = pump(
            translator,
            anthropic_upstream(MESSAGE_START, block_start(0, {"type": "text", "text": ""})),
        )
        out += translator.error("The upstream connection was lost.")
        view = OpenAIClientView(out)
        assert (
            view.error is not None and view.error["message"] == "The upstream connection was lost."
        )
        assert not view.done and not translator.finished
        assert translator.error("again") == []
        assert translator.feed(decode_bytewise([sse(MESSAGE_STOP, "message_stop")])[0]) == []

    def test_close_ends_normally_only_after_the_stop_reason(self) -> None:
        translator = anthropic_stream_to_openai(
            model="m", include_usage=True, completion_id="c", created=1
        )
        out = pump(translator, anthropic_upstream(MESSAGE_START, message_delta("end_turn", 3)))
        out += translator.close()
        view = OpenAIClientView(out)
        assert view.done and translator.finished
        assert view.chunks[-1]["usage"]["completion_tokens"] == 3

        cut = anthropic_stream_to_openai(
            model="m", include_usage=True, completion_id="c", created=1
        )
        pump(cut, anthropic_upstream(MESSAGE_START))
        assert cut.close() == []
        assert not cut.finished

    def test_malformed_upstream_data_is_an_error(self) -> None:
        translator, view = to_openai(
            sse(MESSAGE_START, "message_start") + b"event: content_block_delta\ndata: {oops\n\n"
        )
        assert view.error is not None and not view.done and not translator.finished

    def test_unknown_event_types_are_skipped(self) -> None:
        _, view = to_openai(
            anthropic_upstream(
                MESSAGE_START,
                {"type": "brand_new_event", "x": 1},
                message_delta("end_turn"),
                MESSAGE_STOP,
            )
        )
        assert view.done and view.error is None


class TestOpenAIUpstreamToAnthropicClient:
    @staticmethod
    def chunk(
        delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        return {
            "id": "chatcmpl-up",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "up",
            "choices": choices,
        } | extra

    USAGE = {
        "prompt_tokens": 90,
        "completion_tokens": 12,
        "total_tokens": 102,
        "prompt_tokens_details": {"cached_tokens": 10},
    }

    def test_text_stream(self) -> None:
        c = self.chunk
        translator, view = to_anthropic(
            openai_upstream(
                c({"role": "assistant", "content": ""}),
                c({"content": "Grüße "}),
                c({"content": "☃ 🎉"}),
                c({}, "stop"),
                c(None, usage=self.USAGE),
                b"[DONE]",
            )
        )
        assert view.types() == [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        start = view.events[0]["message"]
        assert start["id"] == "msg_gw1" and start["model"] == "deepseek-v4-flash"
        assert start["usage"]["input_tokens"] == 77
        assert view.blocks() == [{"type": "text", "text": "Grüße ☃ 🎉"}]
        assert view.events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
        assert view.events[-2]["usage"] == {
            "input_tokens": 80,
            "output_tokens": 12,
            "cache_read_input_tokens": 10,
            "cache_creation_input_tokens": 0,
        }
        assert view.message.usage.input_tokens == 80
        assert translator.finished
        assert translator.usage is not None and translator.usage.prompt_tokens == 90
        assert translator.output_chars == len("Grüße ☃ 🎉")

    def test_reasoning_content_becomes_a_thinking_block(self) -> None:
        c = self.chunk
        _, view = to_anthropic(
            openai_upstream(
                c({"role": "assistant", "reasoning_content": "Hmm, "}),
                c({"reasoning_content": "four."}),
                c({"reasoning": None, "content": "4"}),
                c({}, "stop", usage=self.USAGE),
                b"[DONE]",
            )
        )
        assert view.blocks() == [
            {"type": "thinking", "thinking": "Hmm, four.", "signature": ""},
            {"type": "text", "text": "4"},
        ]

    @staticmethod
    def call(
        index: int, arguments: str, call_id: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
        if call_id:
            out |= {"id": call_id, "type": "function"}
            out["function"]["name"] = name
        return out

    def test_sequential_parallel_tool_calls(self) -> None:
        c, call = self.chunk, self.call
        translator, view = to_anthropic(
            openai_upstream(
                c({"role": "assistant", "content": "Both."}),
                c({"tool_calls": [call(0, "", "call_A", "weather")]}),
                c({"tool_calls": [call(0, '{"city":')]}),
                c({"tool_calls": [call(0, ' "Paris"}')]}),
                c({"tool_calls": [call(1, '{"tz"', "call_B", "time")]}),
                c({"tool_calls": [call(1, ': "CET"}')]}),
                c({}, "tool_calls"),
                c(None, usage=self.USAGE),
                b"[DONE]",
            )
        )
        assert view.blocks() == [
            {"type": "text", "text": "Both."},
            {"type": "tool_use", "id": "call_A", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_B", "name": "time", "input": {"tz": "CET"}},
        ]
        assert view.message.stop_reason == "tool_use"
        assert translator.output_chars == len("Both.") + len('{"city": "Paris"}') + len(
            '{"tz": "CET"}'
        )

    def test_interleaved_tool_call_deltas(self) -> None:
        c, call = self.chunk, self.call
        _, view = to_anthropic(
            openai_upstream(
                c(
                    {
                        "role": "assistant",
                        "tool_calls": [call(0, "", "call_A", "a"), call(1, '{"y"', "call_B", "b")],
                    }
                ),
                c({"tool_calls": [call(0, '{"x"')]}),
                c({"tool_calls": [call(1, ": 2}"), call(0, ": 1")]}),
                c({"tool_calls": [call(2, "{}", "call_C", "c")]}),
                c({"tool_calls": [call(0, "}")]}),
                c({}, "tool_calls"),
                b"[DONE]",
            )
        )
        assert view.blocks() == [
            {"type": "tool_use", "id": "call_A", "name": "a", "input": {"x": 1}},
            {"type": "tool_use", "id": "call_B", "name": "b", "input": {"y": 2}},
            {"type": "tool_use", "id": "call_C", "name": "c", "input": {}},
        ]

    def test_text_after_tool_calls_opens_a_new_block(self) -> None:
        c, call = self.chunk, self.call
        _, view = to_anthropic(
            openai_upstream(
                c({"tool_calls": [call(0, "{}", "call_A", "a")]}),
                c({"tool_calls": [call(1, "{}", "call_B", "b")]}),
                c({"content": "done"}),
                c({}, "stop"),
                b"[DONE]",
            )
        )
        assert [b["type"] for b in view.blocks()] == ["tool_use", "tool_use", "text"]

    def test_a_tool_call_without_id_gets_one(self) -> None:
        c = self.chunk
        _, view = to_anthropic(
            openai_upstream(
                c({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{}"}}]}),
                c({}, "tool_calls"),
                b"[DONE]",
            )
        )
        assert view.blocks()[0]["id"] == "msg_gw1_call_0"

    @pytest.mark.parametrize(
        ("finish", "extra", "stop_reason", "stop_sequence"),
        [
            ("stop", {}, "end_turn", None),
            ("length", {}, "max_tokens", None),
            ("tool_calls", {}, "tool_use", None),
            ("content_filter", {}, "refusal", None),
            ("stop", {"stop_reason": "###"}, "stop_sequence", "###"),
        ],
    )
    def test_finish_reasons(
        self, finish: str, extra: dict[str, Any], stop_reason: str, stop_sequence: str | None
    ) -> None:
        chunk = self.chunk({"content": "x"})
        chunk["choices"][0] |= {"finish_reason": finish} | extra
        _, view = to_anthropic(openai_upstream(chunk, b"[DONE]"))
        assert view.message.stop_reason == stop_reason
        assert view.message.stop_sequence == stop_sequence

    def test_usage_in_the_finish_chunk(self) -> None:
        c = self.chunk
        translator, view = to_anthropic(
            openai_upstream(c({"content": "x"}), c({}, "stop", usage=self.USAGE), b"[DONE]")
        )
        assert view.message.usage.output_tokens == 12
        assert translator.usage is not None and translator.usage.completion_tokens == 12

    def test_without_upstream_usage_output_tokens_are_zero(self) -> None:
        c = self.chunk
        translator, view = to_anthropic(
            openai_upstream(c({"content": "x"}), c({}, "stop"), b"[DONE]")
        )
        assert view.events[-2]["usage"] == {"output_tokens": 0}
        assert view.message.usage.input_tokens == 77
        assert translator.usage is None and translator.finished

    def test_an_upstream_error_becomes_an_error_event(self) -> None:
        c = self.chunk
        translator, view = to_anthropic(
            openai_upstream(
                c({"content": "Hel"}),
                {"error": {"message": "Backend died", "type": "server_error"}},
                c({"content": "lo"}),
            )
        )
        assert view.types()[-1] == "error"
        assert view.events[-1]["error"] == {"type": "api_error", "message": "Backend died"}
        assert "message_stop" not in view.types()
        assert not translator.finished

    def test_done_without_a_finish_reason_is_an_error(self) -> None:
        translator, view = to_anthropic(openai_upstream(self.chunk({"content": "Hel"}), b"[DONE]"))
        assert view.types()[-1] == "error"
        assert not translator.finished

    def test_error_from_the_gateway(self) -> None:
        translator = openai_stream_to_anthropic(
            model="m", message_id="msg_x", estimated_input_tokens=1
        )
        out = pump(translator, openai_upstream(self.chunk({"content": "Hel"})))
        out += translator.error("Upstream timed out.")
        view = AnthropicClientView(out)
        assert view.events[-1] == {
            "type": "error",
            "error": {"type": "api_error", "message": "Upstream timed out."},
        }
        assert not translator.finished

    def test_an_error_before_anything_else_is_just_the_error(self) -> None:
        translator = openai_stream_to_anthropic(
            model="m", message_id="msg_x", estimated_input_tokens=1
        )
        view = AnthropicClientView(translator.error("Upstream refused the connection."))
        assert view.types() == ["error"]

    def test_close_after_finish_without_done(self) -> None:
        translator = openai_stream_to_anthropic(
            model="m", message_id="msg_x", estimated_input_tokens=1
        )
        out = pump(
            translator,
            openai_upstream(
                self.chunk({"content": "hi"}), self.chunk({}, "stop", usage=self.USAGE)
            ),
        )
        out += translator.close()
        view = AnthropicClientView(out)
        assert view.types()[-1] == "message_stop"
        assert translator.finished


def test_a_whole_anthropic_stream_in_one_feed_matches_bytewise() -> None:
    upstream = anthropic_upstream(
        MESSAGE_START,
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, {"type": "text_delta", "text": "hello"}),
        block_stop(0),
        message_delta("end_turn"),
        MESSAGE_STOP,
    )
    bytewise = pump(
        anthropic_stream_to_openai(model="m", include_usage=True, completion_id="c", created=1),
        upstream,
    )
    whole = anthropic_stream_to_openai(model="m", include_usage=True, completion_id="c", created=1)
    out = [b for e in SSEDecoder().feed(upstream) for b in whole.feed(e)]
    assert out == bytewise


def test_message_parses_as_sdk_message() -> None:
    translator = openai_stream_to_anthropic(model="m", message_id="msg_x", estimated_input_tokens=5)
    view = AnthropicClientView(
        pump(
            translator,
            openai_upstream(
                TestOpenAIUpstreamToAnthropicClient.chunk({"content": "x"}, "stop"), b"[DONE]"
            ),
        )
    )
    at.Message.model_validate(view.message.to_dict())


def test_llama_server_chat_stream_shape() -> None:
    """llama-server starts with ``content: null``, omits ``logprobs`` and per-chunk ``usage``."""
    chunks = [
        {
            "id": "chatcmpl-l",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "alias",
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}
            ],
        },
        {
            "id": "chatcmpl-l",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "alias",
            "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}],
        },
        {
            "id": "chatcmpl-l",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "alias",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
        },
        {
            "id": "chatcmpl-l",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "alias",
            "choices": [],
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 4,
                "total_tokens": 16,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        },
    ]
    translator, view = to_anthropic(openai_upstream(*chunks, b"[DONE]"))
    assert view.blocks() == [{"type": "text", "text": "Hello"}]
    assert view.message.stop_reason == "max_tokens"
    assert view.message.usage.input_tokens == 12 and view.message.usage.output_tokens == 4
    assert translator.finished


def test_llama_server_messages_stream_shape() -> None:
    """llama-server's Messages stream has no ping, only output_tokens in message_delta, and
    reports a matched stop sequence with stop_reason end_turn."""
    start = {
        "type": "message_start",
        "message": MESSAGE_START["message"]
        | {
            "id": "chatcmpl-l",
            "usage": {"input_tokens": 9, "cache_read_input_tokens": 3, "output_tokens": 0},
        },
    }
    translator, view = to_openai(
        anthropic_upstream(
            start,
            block_start(0, {"type": "text", "text": ""}),
            block_delta(0, {"type": "text_delta", "text": "Hi"}),
            block_stop(0),
            message_delta("end_turn", 4, stop_sequence="there"),
            MESSAGE_STOP,
        )
    )
    assert view.finish_reasons() == ["stop"]
    assert view.chunks[-1]["usage"]["prompt_tokens"] == 12
    assert translator.usage is not None and translator.usage.completion_tokens == 4
