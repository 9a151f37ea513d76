from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from reapi.money import UNITS_PER_CREDIT
from reapi.protocols.tasks import TaskError, TaskErrorCode
from reapi.services.tasks.catalog import load_task_models, price, validate_task_request
from reapi.services.tasks.probe import media_seconds, probe_source_seconds
from reapi.services.tasks.urls import UrlPolicy, guarded_connector
from tests.fakes.task_upstreams import MP3_BYTES, PNG_1X1, FakeMediaHost, wav_bytes


@pytest.fixture
async def host() -> AsyncIterator[FakeMediaHost]:
    files = {
        "song.wav": (wav_bytes(61.5), "audio/wav"),
        "short.wav": (wav_bytes(2), "audio/wav"),
        "pic.png": (PNG_1X1, "image/png"),
    }
    async with FakeMediaHost(files) as h:
        yield h


@pytest.fixture
async def guarded() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        connector=guarded_connector(UrlPolicy.allowing("127.0.0.1"))
    ) as s:
        yield s


def test_media_seconds_reads_headers() -> None:
    assert media_seconds(wav_bytes(3)) == Decimal("3.0")
    assert media_seconds(PNG_1X1) is None
    assert media_seconds(b"") is None
    assert media_seconds(MP3_BYTES[:4]) is None


async def test_probe_then_price_per_rounded_up_minute(
    host: FakeMediaHost, guarded: aiohttp.ClientSession
) -> None:
    model = load_task_models({})["audio-stem-separator"]
    url = f"{host.base_url}/song.wav"
    params = validate_task_request(
        model, {"audio_url": url, "stem": "vocals"}, policy=UrlPolicy.allowing("127.0.0.1")
    )
    seconds = await probe_source_seconds(guarded, params["audio_url"], param="audio_url")
    assert seconds == Decimal("61.5")
    assert price(model, params, source_seconds=seconds) == 2 * 200 * UNITS_PER_CREDIT


@pytest.mark.parametrize("name", ["pic.png", "missing.wav"])
async def test_unreadable_sources_are_client_errors(
    name: str, host: FakeMediaHost, guarded: aiohttp.ClientSession
) -> None:
    with pytest.raises(TaskError) as info:
        await probe_source_seconds(guarded, f"{host.base_url}/{name}", param="audio_url")
    assert (info.value.code, info.value.param) == (TaskErrorCode.SOURCE_UNREADABLE, "audio_url")
    assert info.value.http_status == 400


async def test_oversized_source_is_refused(
    host: FakeMediaHost, guarded: aiohttp.ClientSession
) -> None:
    with pytest.raises(TaskError) as info:
        await probe_source_seconds(
            guarded, f"{host.base_url}/song.wav", param="audio_url", max_bytes=1000
        )
    assert "too large" in info.value.message


async def test_probe_goes_through_the_guard(host: FakeMediaHost) -> None:
    async with aiohttp.ClientSession(connector=guarded_connector()) as strict:
        with pytest.raises(TaskError):
            await probe_source_seconds(strict, f"{host.base_url}/short.wav", param="audio_url")
    assert host.hits == 0
