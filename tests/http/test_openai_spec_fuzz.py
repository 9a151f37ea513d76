"""``POST /v1/chat/completions`` fuzzed by schemathesis from OpenAI's own OpenAPI description
(the copy in tests/specs), toward an OpenAI channel and toward a Claude model on an Anthropic
channel, so both the relay and the translators see the bodies.

Two runs: schemathesis's coverage cases (a template request with each field in turn given a
value of the wrong type, out of range or missing: the run that first found the gateway's 500s),
and freely generated bodies the spec allows. The spec is the peer's contract, so it is the
oracle: no answer may be a 5xx, a 200 must be a ``CreateChatCompletionResponse`` or a stream of
``CreateChatCompletionStreamResponse`` chunks ending in ``[DONE]``, and anything else a 4xx in
OpenAI's error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.conftest import OPENAI_SPEC, Gateway
from tests.fakes.openai_upstream import FakeOpenAI
from tests.http.conftest import CLAUDE_MODEL, OPENAI_MODEL
from tests.http.envelopes import CHAT_PATH, assert_answer
from tests.schemas import use_spec

# Per model. Generating from this schema costs more than the calls themselves.
GENERATED_EXAMPLES = 60

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_operation() -> Any:
    with OPENAI_SPEC.open() as handle:
        spec = yaml.load(handle, Loader=yaml.CSafeLoader)
    return schemathesis.openapi.from_dict(spec)["/chat/completions"]["POST"]


@pytest.fixture(autouse=True)
def _spec(openai_spec: dict[str, Any]) -> None:
    use_spec(openai_spec)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def send(client: httpx.Client, gateway: Gateway, key: str, case: Any, model: str) -> None:
    sent = case.as_transport_kwargs(base_url=gateway.url + "/v1")
    if "json" in sent:
        body = json.loads(json.dumps(sent["json"]))  # a copy: the case keeps its own
        if isinstance(body, dict):
            # A random model name is a 404 before any field is read: aim at a real one.
            body["model"] = model
            if isinstance(body.get("messages"), list):
                # Claude needs a user turn to answer; without one most bodies would stop at
                # that 400 and the translators would see little.
                body["messages"].append({"role": "user", "content": "Go on."})
            if model == CLAUDE_MODEL:
                # Legacy function calling is refused toward Claude (docs/translation.md), and
                # the coverage template carries it in every case: it would hide the rest.
                body.pop("functions", None)
                body.pop("function_call", None)
        content = json.dumps(body).encode()
    else:
        content = sent.get("data") or b""
    response = client.post(
        gateway.url + CHAT_PATH,
        headers={"Authorization": f"Bearer {key}", "content-type": "application/json"},
        content=content,
    )
    assert_answer(response, CHAT_PATH)


def test_each_field_wrong_in_turn_is_refused_in_the_spec_envelope(
    mixed: Gateway, upstream: FakeOpenAI, chat_operation: Any, client: httpx.Client
) -> None:
    key = mixed.key(credit="100000")
    schema = chat_operation.schema
    cases = schema.iter_coverage_cases(
        chat_operation,
        generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        generation_config=schema.config.generation_for(operation=chat_operation, phase="coverage"),
    )
    count = 0
    for count, case in enumerate(cases, 1):
        # Each case once, the channels in turn: the checks that refuse these run before routing.
        send(client, mixed, key, case, (OPENAI_MODEL, CLAUDE_MODEL)[count % 2])
    assert count > 500  # the template's every field, each broken several ways


@pytest.mark.parametrize("model", [OPENAI_MODEL, CLAUDE_MODEL])
def test_every_answer_to_a_body_the_spec_allows_is_in_the_spec(
    mixed: Gateway, upstream: FakeOpenAI, chat_operation: Any, client: httpx.Client, model: str
) -> None:
    key = mixed.key(credit="100000")

    @settings(
        max_examples=GENERATED_EXAMPLES,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )
    @given(case=chat_operation.as_strategy(GenerationMode.POSITIVE))
    def run(case: Any) -> None:
        send(client, mixed, key, case, model)

    run()
