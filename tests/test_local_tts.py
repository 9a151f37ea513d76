"""Text-to-speech end to end with no provider: a real gateway whose ``espeak`` channel speaks
with eSpeak NG on this machine, driven over plain HTTP with a tasks key exactly as a client
would (submit, poll, download the media URL), with the credits checked against the catalog.

Run alone with ``pytest -m local_tts``; skipped, saying why, where the tts extra is missing.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reapi.config import ConfigError, build_config
from reapi.providers.tasks import espeak
from reapi.services.keys import KeyService
from reapi.services.tasks.catalog import load_task_models, price, validate_task_request
from reapi.settings import Settings
from reapi.storage.db import Database
from reapi.worker.runtime import TaskRuntime
from tests.task_gateway import TaskGateway

pytestmark = [
    pytest.mark.local_tts,
    pytest.mark.skipif(
        not espeak.installed(),
        reason="needs the tts extra (espeakng-loader): pip install 'reapi[tts]'",
    ),
]

MODEL = load_task_models({})["espeak-tts"]
SPEECH_CHANNEL = {"name": "speech", "type": "espeak", "models": ["espeak-tts"]}


@pytest.fixture(scope="module")
def gw(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskGateway]:
    config = build_config(
        {
            "channels": [SPEECH_CHANNEL],
            "tasks": {"media_dir": str(tmp_path_factory.mktemp("media")), "poll_interval": 0.05},
        }
    )
    gateway = TaskGateway(Settings(database_url=database_url), config)
    yield gateway
    gateway.stop()


def speak(gw: TaskGateway, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Submit, poll until the task ends, download its audio: (final task, file bytes)."""
    submitted = gw.submit(key, "audio", {"model": "espeak-tts", **body})
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["status"] == "processing"
    task = gw.wait(key, submitted.json()["id"])
    assert task["status"] == "completed", task
    (url,) = task["output"]["audio_urls"]
    assert url.startswith(gw.url + "/media/tasks/") and url.endswith(".wav")
    audio = gw.http.get(url)
    assert audio.status_code == 200
    assert audio.headers["content-type"].startswith("audio/")
    return task, audio.content


def seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.getnframes() / wav.getframerate()


def cost(body: dict[str, Any]) -> int:
    return price(MODEL, validate_task_request(MODEL, body))


def test_speech_task_completes_with_a_wav_file_and_costs_what_the_catalog_says(
    gw: TaskGateway,
) -> None:
    user, key = gw.user("5")
    short = {"text": "Good morning."}
    long = {"text": "Good morning. " * 6 + "The weather today is calm and clear.", "speed": 160}
    task, short_audio = speak(gw, key, short)
    _, long_audio = speak(gw, key, long)
    assert 0.3 < seconds(short_audio) < 3
    assert seconds(long_audio) > 4 * seconds(short_audio)
    charged = cost(short) + cost(long)
    assert charged == (13 + len(long["text"])) * 1_000  # 1 credit per 1,000 characters
    assert gw.balance(user) == 5_000_000 - charged
    assert gw.ledger(task["id"]) == [("charge", -cost(short))]
    assert gw.verify() == []


def test_an_unknown_voice_is_refused_at_submit_and_costs_nothing(gw: TaskGateway) -> None:
    user, key = gw.user("5")
    refused = gw.submit(key, "audio", {"model": "espeak-tts", "text": "Hi.", "voice": "tlh"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == 20007 and "voice" in error["message"]
    assert refused.headers["x-request-id"] == error["request_id"]
    listed = gw.http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    assert listed.json()["data"] == []
    assert gw.balance(user) == 5_000_000


def test_text_past_what_the_balance_covers_is_refused_with_402(gw: TaskGateway) -> None:
    user, key = gw.user("0.01")  # covers 10 characters
    refused = gw.submit(key, "audio", {"model": "espeak-tts", "text": "Eleven char"})
    assert refused.status_code == 402 and refused.json()["error"]["code"] == 30001
    assert gw.balance(user) == 10_000
    _, audio = speak(gw, key, {"text": "Ten chars."})
    assert seconds(audio) > 0.3
    assert gw.balance(user) == 0


async def test_a_voice_the_engine_lacks_stops_startup(database_url: str, tmp_path: Path) -> None:
    config = build_config(
        {
            "channels": [SPEECH_CHANNEL],
            "models": {
                "espeak-tts": {"kind": "audio", "schema": {"voice": {"enum": ["en-us", "tlh"]}}}
            },
            "tasks": {"media_dir": str(tmp_path), "workers": 0},
        }
    )
    db = Database(database_url)
    try:
        with pytest.raises(ConfigError, match="tlh, which eSpeak NG does not have"):
            await TaskRuntime.start(Settings(database_url=database_url), config, db, KeyService(db))
    finally:
        await db.dispose()
