"""The output-character counts billing estimates from read an upstream's answer whatever its
shape: a wrong one counts nothing, it never raises (which would be the gateway's 500)."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reapi.protocols import anthropic_messages, openai_chat

KEYS = ["choices", "delta", "message", "content", "tool_calls", "function", "name", "arguments",
        "text", "thinking", "type", "input", "reasoning_content"]  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.sampled_from(["choices", "content"]), JSON, max_size=2))
def test_counts_never_raise(answer: dict[str, Any]) -> None:
    assert openai_chat.count_output_chars(answer) >= 0
    assert openai_chat.count_answer_chars(answer) >= 0
    assert anthropic_messages.count_answer_chars(answer) >= 0


def test_counts_of_well_formed_answers() -> None:
    call = {"function": {"name": "f", "arguments": '{"a":1}'}}
    chunk = {"choices": [{"delta": {"content": "Hi", "tool_calls": [call]}}]}
    assert openai_chat.count_output_chars(chunk) == 2 + 1 + 7
    assert openai_chat.count_answer_chars({"choices": [{"message": {"content": "Hello"}}]}) == 5
    message = {"content": [{"type": "text", "text": "Hey"}, {"type": "tool_use", "name": "f",
                                                           "input": {}}]}  # fmt: skip
    assert anthropic_messages.count_answer_chars(message) == 3 + 1 + 2
