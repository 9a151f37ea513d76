"""Channel type -> task adapter. A new upstream task API is one module plus one line here."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from reapi.providers.tasks.base import TaskAdapter
from reapi.providers.tasks.espeak import EspeakAdapter
from reapi.providers.tasks.fal import FalAdapter
from reapi.providers.tasks.openai_images import OpenAIImagesAdapter
from reapi.providers.tasks.reapi import ReapiAdapter
from reapi.providers.tasks.replicate import ReplicateAdapter

# Adapters hold no state (the session and channel are passed in; eSpeak's engine is the
# process's own), so one shared instance each is safe; the proxy keeps anyone from registering
# at runtime.
TASK_ADAPTERS: Mapping[str, TaskAdapter] = MappingProxyType(
    {
        OpenAIImagesAdapter.type: OpenAIImagesAdapter(),
        FalAdapter.type: FalAdapter(),
        ReplicateAdapter.type: ReplicateAdapter(),
        ReapiAdapter.type: ReapiAdapter(),
        # Local: speaks on this machine (the tts extra); no upstream, no session used.
        EspeakAdapter.type: EspeakAdapter(),
    }
)


def task_adapter(channel_type: str) -> TaskAdapter:
    try:
        return TASK_ADAPTERS[channel_type]
    except KeyError:
        raise LookupError(f"no task adapter for channel type {channel_type!r}") from None
