"""The eSpeak NG engine behind the ``espeak`` task channel, against the real library that the
``tts`` extra installs: real WAV files, one synthesis at a time, refusals as the worker expects.
Skipped, saying why, where the extra is not installed."""

from __future__ import annotations

import asyncio
import io
import wave

import pytest

from reapi.protocols.tasks import TaskErrorCode
from reapi.providers.tasks import espeak
from reapi.providers.tasks.base import SubmitError, TaskChannel, UpstreamJob
from reapi.providers.tasks.registry import task_adapter
from reapi.services.tasks.catalog import load_task_models, validate_task_request
from reapi.services.tasks.outputs import submit_failure

pytestmark = [
    pytest.mark.local_tts,
    pytest.mark.skipif(
        not espeak.installed(),
        reason="needs the tts extra (espeakng-loader): pip install 'reapi[tts]'",
    ),
]

MODEL = load_task_models({})["espeak-tts"]
CHANNEL = TaskChannel(name="speech", type="espeak", base_url="")


def seconds(data: bytes) -> float:
    """The length of a WAV file, read back with the standard library."""
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.getnframes() / wav.getframerate()


def about(a: bytes, b: bytes) -> bool:
    """Same speech: eSpeak varies a request's timing a little from one call to the next, so
    two renderings of one text match in length to within 2%, not byte for byte."""
    return abs(seconds(a) - seconds(b)) <= 0.02 * seconds(b)


def loudness(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as wav:
        frames = wav.readframes(wav.getnframes())
    samples = memoryview(frames).cast("h")
    return max(abs(s) for s in samples)


async def test_speech_is_a_wav_file_that_grows_with_the_text() -> None:
    short = await espeak.synthesize(espeak.Speech("Hello."))
    long = await espeak.synthesize(espeak.Speech("Hello. " * 8 + "That was a lot of hellos."))
    assert short[:4] == b"RIFF" and short[8:12] == b"WAVE"
    assert 0.3 < seconds(short) < 3
    assert seconds(long) > 4 * seconds(short)
    assert loudness(short) > 1000  # speech, not silence


async def test_speed_and_voice_change_the_sound() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    normal = await espeak.synthesize(espeak.Speech(text))
    fast = await espeak.synthesize(espeak.Speech(text, speed=350))
    assert seconds(fast) < 0.7 * seconds(normal)
    french = await espeak.synthesize(espeak.Speech("Bonjour tout le monde.", voice="fr-fr"))
    assert seconds(french) > 0.5
    # The next request with defaults is not left with the previous one's voice or rate.
    assert about(await espeak.synthesize(espeak.Speech(text)), normal)


async def test_every_catalog_voice_exists_in_the_engine() -> None:
    voices = await espeak.start()
    offered = MODEL.schema["voice"].enum
    assert offered is not None
    assert {str(v) for v in offered} <= set(voices)


async def test_concurrent_requests_never_mix_their_audio() -> None:
    texts = [f"Request number {n} says {'la ' * n}." for n in range(1, 7)]
    alone = [await espeak.synthesize(espeak.Speech(t)) for t in texts]
    together = await asyncio.gather(*(espeak.synthesize(espeak.Speech(t)) for t in texts))
    # Two syntheses sharing the library at once would pour into one buffer: one file would
    # hold both texts and the other next to nothing.
    assert all(about(t, a) for t, a in zip(together, alone, strict=True))
    lengths = [seconds(t) for t in together]
    assert lengths == sorted(lengths)


async def test_a_cancelled_synthesis_leaves_the_engine_working() -> None:
    reference = await espeak.synthesize(espeak.Speech("Still here."))
    running = asyncio.ensure_future(espeak.synthesize(espeak.Speech("Long text. " * 400)))
    queued = asyncio.ensure_future(espeak.synthesize(espeak.Speech("Never spoken. " * 400)))
    await asyncio.sleep(0)
    running.cancel()
    queued.cancel()
    await asyncio.gather(running, queued, return_exceptions=True)
    assert running.cancelled() and queued.cancelled()
    assert about(await espeak.synthesize(espeak.Speech("Still here.")), reference)


async def test_an_unknown_voice_is_a_rejection_not_a_fault() -> None:
    with pytest.raises(espeak.SpeechError, match="no voice 'xx-nowhere'"):
        await espeak.synthesize(espeak.Speech("Hi.", voice="xx-nowhere"))
    adapter = task_adapter("espeak")
    with pytest.raises(SubmitError) as refused:
        await adapter.submit(None, CHANNEL, MODEL, {"text": "Hi.", "voice": "xx-nowhere"})  # type: ignore[arg-type]
    assert refused.value.certain and refused.value.rejected
    shown = submit_failure(refused.value)  # what the client reads: the engine's reason
    assert (
        shown.code == TaskErrorCode.UPSTREAM_REJECTED and "no voice 'xx-nowhere'" in shown.message
    )


async def test_submit_returns_the_finished_file_and_a_lost_result_is_spoken_again() -> None:
    adapter = task_adapter("espeak")
    params = validate_task_request(MODEL, {"text": "Stored or not, here I am."})
    job = await adapter.submit(None, CHANNEL, MODEL, params)  # type: ignore[arg-type]
    assert job.result is not None and job.result.status == "completed"
    (output,) = job.result.outputs
    assert output.content_type == "audio/wav" and output.data is not None
    # What the worker stores is plain JSON without the file; a worker that resumes from it
    # (the first one died before storing the audio) gets the same speech again.
    resumed = UpstreamJob.from_json(job.to_json())
    state = await adapter.poll(None, CHANNEL, resumed)  # type: ignore[arg-type]
    assert state.status == "completed"
    assert state.outputs[0].data is not None and about(state.outputs[0].data, output.data)


def test_a_missing_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeak, "LOADER_MODULE", "espeakng_loader_not_installed")
    with pytest.raises(espeak.EspeakUnavailable, match=r"pip install 'reapi\[tts\]'"):
        espeak._Engine()
