"""Text-to-speech on the gateway's own machine with eSpeak NG: the ``espeak`` task channel type.

Needs the ``tts`` extra (``pip install 'reapi[tts]'``): the ``espeakng-loader`` package ships
eSpeak NG's shared library and its voice data (both GPL-3.0-or-later), which this module calls
through ``ctypes``. No system package is used.

The library keeps its state in globals (the current voice, rate and pitch, the audio callback),
so every call into it, initialisation included, runs on one dedicated thread: tasks submitted
at once queue there and are spoken one after another, never interleaved. Speaking runs
hundreds of times faster than real time, so the queue stays short.

The adapter is synchronous, like OpenAI Images: ``submit`` returns the finished WAV file. The
job keeps the request, so a worker that lost the result (a crash before the file was stored)
speaks it again on its next poll: nothing upstream was started or billed.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import importlib.util
import io
import secrets
import threading
import wave
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from reapi.providers.tasks.base import (
    ChannelLike,
    JobOutput,
    JobState,
    SubmitError,
    TaskModelLike,
    UpstreamJob,
    wire_params,
)

INSTALL_HINT = "install it with: pip install 'reapi[tts]'"
LOADER_MODULE = "espeakng_loader"
CONTENT_TYPE = "audio/wav"

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it, a missing data directory calls exit()
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _PITCH = 1, 3
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        # (priority byte, language, NUL) pairs, ended by a zero byte; the first is the main one.
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class EspeakUnavailable(RuntimeError):
    """The speech engine cannot run here; the message says how to fix it."""


class SpeechError(ValueError):
    """The engine refused this request (e.g. a voice it does not have)."""


DEFAULT_VOICE = "en-us"
DEFAULT_SPEED = 175  # words per minute; the library takes 80 to 450
DEFAULT_PITCH = 50  # 0 to 100


@dataclass(frozen=True, slots=True)
class Speech:
    text: str
    voice: str = DEFAULT_VOICE
    speed: int = DEFAULT_SPEED
    pitch: int = DEFAULT_PITCH

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Speech:
        """From a validated request (the catalog has filled in the defaults)."""
        return cls(
            text=str(params["text"]),
            voice=str(params.get("voice", DEFAULT_VOICE)),
            speed=int(params.get("speed", DEFAULT_SPEED)),
            pitch=int(params.get("pitch", DEFAULT_PITCH)),
        )


class _Engine:
    """The loaded library. Only ever touched from ``_THREAD``."""

    def __init__(self) -> None:
        try:
            loader = importlib.import_module(LOADER_MODULE)
        except ImportError:
            raise EspeakUnavailable(
                f"text-to-speech needs eSpeak NG from espeakng-loader; {INSTALL_HINT}"
            ) from None
        try:
            lib = ctypes.CDLL(loader.get_library_path())
            data_dir = Path(loader.get_data_path())
        except (OSError, RuntimeError) as exc:
            raise EspeakUnavailable(
                f"cannot load eSpeak NG from espeakng-loader ({exc}); reinstall it, {INSTALL_HINT}"
            ) from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        # The library wants the directory that holds espeak-ng-data, not the data itself.
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_dir.parent).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakUnavailable(
                f"eSpeak NG could not initialise from {data_dir}; reinstall it, {INSTALL_HINT}"
            )
        self._lib = lib
        self.sample_rate = rate
        self._samples = bytearray()
        self._cancelled = threading.Event()
        # Kept on the instance: the library calls it long after this frame is gone.
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.voices = self._list_voices()

    def _list_voices(self) -> dict[str, str]:
        """Language code -> the voice file the library loads for it."""
        voices: dict[str, str] = {}
        listed = self._lib.espeak_ListVoices(None)
        i = 0
        while listed[i]:
            voice = listed[i].contents
            languages, identifier = voice.languages, voice.identifier
            if languages and identifier:
                language = languages[1:].split(b"\0", 1)[0].decode("utf-8", "replace")
                voices.setdefault(language.lower(), identifier.decode("utf-8", "replace"))
            i += 1
        return voices

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0 and wav:
            self._samples += ctypes.string_at(wav, count * 2)
        return 1 if self._cancelled.is_set() else 0  # 1 stops the synthesis

    def speak(self, speech: Speech, cancelled: threading.Event) -> bytes:
        identifier = self.voices.get(speech.voice.lower())
        if identifier is None:
            raise SpeechError(f"eSpeak NG has no voice {speech.voice!r}")
        lib = self._lib
        # Voice first: choosing a voice resets the rate and pitch to its own.
        if lib.espeak_SetVoiceByName(identifier.encode()) != _EE_OK:
            raise SpeechError(f"eSpeak NG could not load the voice {speech.voice!r}")
        lib.espeak_SetParameter(_RATE, speech.speed, 0)
        lib.espeak_SetParameter(_PITCH, speech.pitch, 0)
        self._samples = bytearray()
        self._cancelled = cancelled
        # NUL ends the C string; JSON text may carry one.
        text = speech.text.replace("\0", " ").encode("utf-8") + b"\0"
        status = lib.espeak_Synth(text, len(text), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        samples, self._samples = bytes(self._samples), bytearray()
        if cancelled.is_set():
            raise SpeechError("the synthesis was cancelled")
        if status != _EE_OK:
            raise SpeechError(f"eSpeak NG failed to speak the text (status {status})")
        return wav_file(samples, self.sample_rate)


def wav_file(samples: bytes, sample_rate: int) -> bytes:
    """16-bit mono PCM samples as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(samples)
    return out.getvalue()


def installed() -> bool:
    """Whether the tts extra is installed (without loading the library)."""
    return importlib.util.find_spec(LOADER_MODULE) is not None


# One thread for the process's lifetime, created on first use; _engine lives on it.
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
_engine: _Engine | None = None


def _engine_here() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def _voices() -> dict[str, str]:
    return dict(_engine_here().voices)


async def start() -> dict[str, str]:
    """Load the library on its thread now, so a missing extra stops the gateway at startup
    rather than failing the first task; returns the voices (language code -> voice file)."""
    return await asyncio.get_running_loop().run_in_executor(_THREAD, _voices)


async def synthesize(speech: Speech) -> bytes:
    """The WAV file of ``speech``. Raises ``EspeakUnavailable`` or ``SpeechError``."""
    cancelled = threading.Event()
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _THREAD, lambda: _engine_here().speak(speech, cancelled)
        )
    except asyncio.CancelledError:
        # A queued call is dropped by the executor; a running one stops at its next callback.
        cancelled.set()
        raise


class EspeakAdapter:
    type = "espeak"

    async def submit(
        self,
        session: aiohttp.ClientSession,
        channel: ChannelLike,
        model: TaskModelLike,
        params: Mapping[str, Any],
    ) -> UpstreamJob:
        speech = Speech.from_params(wire_params(channel, model, params))
        job = UpstreamJob(
            channel.name, f"espeak-{secrets.token_hex(8)}", {"speech": asdict(speech)}
        )
        job.result = await _speak(speech)
        return job

    async def poll(
        self, session: aiohttp.ClientSession, channel: ChannelLike, job: UpstreamJob
    ) -> JobState:
        if job.result is not None:
            return job.result
        raw = job.data.get("speech")
        if not isinstance(raw, dict):
            return JobState.failed("the speech request was lost before it was stored")
        try:
            return await _speak(Speech(**raw))
        except SubmitError as exc:
            return JobState.failed(exc.message, refusal=exc.reason if exc.rejected else None)


async def _speak(speech: Speech) -> JobState:
    try:
        wav = await synthesize(speech)
    except EspeakUnavailable as exc:
        raise SubmitError(str(exc), certain=True) from exc
    except SpeechError as exc:
        # The engine's words name the request's own fault (a voice it lacks): the client's.
        raise SubmitError(str(exc), certain=True, rejected=True, reason=str(exc)) from exc
    return JobState("completed", (JobOutput(data=wav, content_type=CONTENT_TYPE),))
