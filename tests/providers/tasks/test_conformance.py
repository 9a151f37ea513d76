"""The suite every task adapter passes against its fake upstream."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.providers.tasks.base import NOT_FOUND_LIMIT, SubmitError, TaskAdapter
from reapi.providers.tasks.registry import TASK_ADAPTERS, task_adapter
from reapi.services.tasks.catalog import validate_task_request
from reapi.services.tasks.outputs import download_output, job_failure, submit_failure
from tests.fakes.task_upstreams import (
    MEDIA,
    Behaviour,
    FakeFalQueue,
    FakeOpenAIImages,
    FakeReapiTasks,
    FakeReplicate,
    FakeUpstream,
    Media,
)
from tests.providers.tasks.conftest import Rig, poll_until_done, start


@dataclass(frozen=True)
class Case:
    channel_type: str
    fake: type[FakeUpstream]
    model: str
    media: Media
    body: dict[str, Any]
    model_map: dict[str, str]
    synchronous: bool = False

    def behaviour(self, **kw: Any) -> Behaviour:
        return Behaviour(media=self.media, **kw)


CASES = [
    Case("openai_images", FakeOpenAIImages, "gpt-image-2", "image", {"prompt": "a fox"}, {},
         synchronous=True),
    Case("fal", FakeFalQueue, "veo3.1-fast", "video", {"prompt": "waves"},
         {"veo3.1-fast": "fal-ai/veo3.1/fast"}),
    Case("replicate", FakeReplicate, "veo3.1-fast-official", "video", {"prompt": "waves"},
         {"veo3.1-fast-official": "google/veo-3.1-fast"}),
    Case("reapi", FakeReapiTasks, "audio-stem-separator", "audio",
         {"audio_url": "https://cdn.example.com/song.mp3", "stem": "vocals"}, {}),
]  # fmt: skip
ASYNC_CASES = [c for c in CASES if not c.synchronous]


def ids(case: Case) -> str:
    return case.channel_type


@pytest.fixture
async def rig_factory() -> AsyncIterator[Callable[..., Any]]:
    started: list[Rig] = []

    async def make(case: Case, **behaviour: Any) -> tuple[Rig, TaskAdapter, dict[str, Any]]:
        rig = await start(case.fake, case.behaviour(**behaviour), case.channel_type, case.model,
                          case.model_map)  # fmt: skip
        started.append(rig)
        params = validate_task_request(rig.model, case.body)
        return rig, task_adapter(case.channel_type), params

    yield make
    for rig in started:
        await rig.fake.close()


def test_registry_has_every_adapter() -> None:
    # The local espeak adapter has no upstream to fake: tests/providers/tasks/test_espeak.py.
    assert set(TASK_ADAPTERS) == {c.channel_type for c in CASES} | {"espeak"}
    with pytest.raises(LookupError):
        task_adapter("midjourney-discord-bot")


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_success_end_to_end(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession,
    download_session: aiohttp.ClientSession,
) -> None:  # fmt: skip
    rig, adapter, params = await rig_factory(case)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    assert job.channel == rig.channel.name and job.job_id
    state, _ = await poll_until_done(adapter, session, rig.channel, job)
    assert state.status == "completed" and state.outputs
    media = await download_output(download_session, state.outputs[0])
    assert media.data == MEDIA[case.media][0]
    creates = [r for r in rig.fake.requests if r.method == "POST"]
    assert len(creates) == 1
    assert creates[0].headers["Authorization"].endswith("test-key")


@pytest.mark.parametrize("case", ASYNC_CASES, ids=ids)
async def test_slow_job_polls_until_done(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case, polls_before_done=3)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    state, polls = await poll_until_done(adapter, session, rig.channel, job)
    assert state.status == "completed"
    assert polls == 4


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_upstream_failure(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case, outcome="fail", error="GPU melted")
    if case.synchronous:
        with pytest.raises(SubmitError) as info:
            await adapter.submit(session, rig.channel, rig.model, params)
        assert info.value.certain
        assert submit_failure(info.value).code in (
            TaskErrorCode.UPSTREAM_REJECTED,
            TaskErrorCode.UPSTREAM_FAILED,
        )
        return
    job = await adapter.submit(session, rig.channel, rig.model, params)
    state, _ = await poll_until_done(adapter, session, rig.channel, job)
    assert state.status == "failed" and state.certain
    assert "GPU melted" in (state.error or "")
    assert job_failure(state).code == TaskErrorCode.UPSTREAM_FAILED


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_refused_create_is_certain_and_not_retried(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case, create_status=422, create_error="bad prompt")
    with pytest.raises(SubmitError) as info:
        await adapter.submit(session, rig.channel, rig.model, params)
    assert info.value.certain and info.value.status == 422
    assert "bad prompt" in info.value.message
    assert len([r for r in rig.fake.requests if r.method == "POST"]) == 1


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_server_error_on_create_is_uncertain(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case, create_status=500)
    with pytest.raises(SubmitError) as info:
        await adapter.submit(session, rig.channel, rig.model, params)
    assert not info.value.certain
    assert len(rig.fake.requests) == 1


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_unreachable_upstream_is_a_certain_submit_failure(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case)
    await rig.fake.close()
    with pytest.raises(SubmitError) as info:
        await adapter.submit(session, rig.channel, rig.model, params)
    assert info.value.certain


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_expired_output_url(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession,
    download_session: aiohttp.ClientSession,
) -> None:  # fmt: skip
    behaviour: dict[str, Any] = {"expire_after_downloads": 1}
    if case.synchronous:
        behaviour["url_outputs"] = True
    rig, adapter, params = await rig_factory(case, **behaviour)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    state, _ = await poll_until_done(adapter, session, rig.channel, job)
    assert state.status == "completed"
    await download_output(download_session, state.outputs[0])
    with pytest.raises(TaskError) as info:
        await download_output(download_session, state.outputs[0])
    assert info.value.code == TaskErrorCode.OUTPUT_UNAVAILABLE
    assert "403" in info.value.message


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_output_url_expiring_after_a_deadline(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession,
    download_session: aiohttp.ClientSession,
) -> None:  # fmt: skip
    behaviour: dict[str, Any] = {"expire_after_seconds": 0.0}
    if case.synchronous:
        behaviour["url_outputs"] = True
    rig, adapter, params = await rig_factory(case, **behaviour)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    state, _ = await poll_until_done(adapter, session, rig.channel, job)
    await download_output(download_session, state.outputs[0])  # the first fetch starts the clock
    with pytest.raises(TaskError):
        await download_output(download_session, state.outputs[0])


@pytest.mark.parametrize("case", CASES, ids=ids)
async def test_plain_session_downloads_are_refused_by_default_guard(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    from reapi.services.tasks.urls import guarded_connector

    behaviour: dict[str, Any] = {"url_outputs": True} if case.synchronous else {}
    rig, adapter, params = await rig_factory(case, **behaviour)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    state, _ = await poll_until_done(adapter, session, rig.channel, job)
    async with aiohttp.ClientSession(connector=guarded_connector()) as strict:
        with pytest.raises(TaskError) as info:
            await download_output(strict, state.outputs[0])
    assert info.value.code == TaskErrorCode.OUTPUT_UNAVAILABLE


@pytest.mark.parametrize("case", ASYNC_CASES, ids=ids)
async def test_transient_poll_errors_read_as_processing(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case, flaky_polls=2)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    first = await adapter.poll(session, rig.channel, job)
    assert first.status == "processing" and first.detail
    state, _ = await poll_until_done(adapter, session, rig.channel, job)
    assert state.status == "completed"


@pytest.mark.parametrize("case", ASYNC_CASES, ids=ids)
async def test_lost_job_fails_only_after_repeated_404s(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    rig.fake.behaviour.lose_job = True
    for _ in range(NOT_FOUND_LIMIT - 1):
        assert (await adapter.poll(session, rig.channel, job)).status == "processing"
    # A good answer in between resets the count.
    rig.fake.behaviour.lose_job = False
    assert (await adapter.poll(session, rig.channel, job)).status in ("processing", "completed")
    assert job.not_found == 0
    rig.fake.behaviour.lose_job = True
    states = [await adapter.poll(session, rig.channel, job) for _ in range(NOT_FOUND_LIMIT)]
    assert [s.status for s in states[:-1]] == ["processing"] * (NOT_FOUND_LIMIT - 1)
    assert states[-1].status == "failed" and not states[-1].certain


@pytest.mark.parametrize("case", ASYNC_CASES, ids=ids)
async def test_poll_with_unreachable_upstream_is_processing(
    case: Case, rig_factory: Any, session: aiohttp.ClientSession
) -> None:
    rig, adapter, params = await rig_factory(case)
    job = await adapter.submit(session, rig.channel, rig.model, params)
    await rig.fake.close()
    state = await adapter.poll(session, rig.channel, job)
    assert state.status == "processing"
