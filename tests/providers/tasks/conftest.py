from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from reapi.providers.tasks.base import JobState, TaskAdapter, TaskChannel, UpstreamJob
from reapi.services.tasks.catalog import TaskModel, load_task_models
from reapi.services.tasks.urls import UrlPolicy, guarded_connector
from tests.fakes.task_upstreams import Behaviour, FakeUpstream

CATALOG = load_task_models({})
LOOPBACK = UrlPolicy.allowing("127.0.0.1")


@dataclass
class Rig:
    fake: FakeUpstream
    channel: TaskChannel
    model: TaskModel


async def start(
    fake_cls: type[FakeUpstream],
    behaviour: Behaviour,
    channel_type: str,
    model: str,
    model_map: dict[str, str] | None = None,
) -> Rig:
    fake = await fake_cls(behaviour).start()
    channel = TaskChannel(
        name=f"{channel_type}-test",
        type=channel_type,
        base_url=fake.base_url,
        api_key="test-key",
        models=[model],
        model_map=model_map or {},
    )
    return Rig(fake, channel, CATALOG[model])


async def poll_until_done(
    adapter: TaskAdapter,
    session: aiohttp.ClientSession,
    channel: TaskChannel,
    job: UpstreamJob,
    max_polls: int = 20,
) -> tuple[JobState, int]:
    """Poll like the worker does (persisting the job between polls); returns the end state
    and how many polls it took."""
    if job.result is not None:
        return job.result, 0
    for n in range(1, max_polls + 1):
        state = await adapter.poll(session, channel, job)
        job = UpstreamJob.from_json(job.to_json())  # what a restart would see
        if state.status != "processing":
            return state, n
    raise AssertionError(f"job still processing after {max_polls} polls")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def download_session() -> AsyncIterator[aiohttp.ClientSession]:
    """The gateway's download session: guarded, with the fakes' loopback explicitly allowed."""
    async with aiohttp.ClientSession(connector=guarded_connector(LOOPBACK)) as s:
        yield s
