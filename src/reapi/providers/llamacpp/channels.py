"""Starting the local servers behind ``llamacpp`` channels, and stopping them with the gateway.

A ``llamacpp`` channel names no ``base_url``: the gateway starts one supervised llama-server per
such channel (options: ``model_path``, ``threads``, ``ctx_size``, ``chat_template`` (``plain``,
``gemma`` or Jinja text), ``model_cache_dir``, ``alias``) and routes to the address it got.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reapi.config import Channel
from reapi.providers.llamacpp.chat_template import chat_template
from reapi.providers.llamacpp.errors import LocalModelUnavailable
from reapi.providers.llamacpp.supervisor import LlamaServerConfig, LlamaServerSupervisor

_OPTIONS = {"model_path", "model_cache_dir", "threads", "ctx_size", "chat_template", "alias"}


def server_config(channel: Channel) -> LlamaServerConfig:
    options: dict[str, Any] = dict(channel.options)
    unknown = set(options) - _OPTIONS
    if unknown:
        raise LocalModelUnavailable(
            f"channel {channel.name!r}: unknown options {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(_OPTIONS))})"
        )
    settings: dict[str, Any] = {}
    for key in ("model_path", "model_cache_dir"):
        if options.get(key):
            settings[key] = Path(options[key]).expanduser()
    for key in ("threads", "ctx_size"):
        if options.get(key) is not None:
            settings[key] = int(options[key])
    if options.get("chat_template"):
        settings["chat_template"] = chat_template(str(options["chat_template"]))
    settings["model_alias"] = str(options.get("alias") or channel.models[0])
    return LlamaServerConfig(**settings)


class LocalServers:
    """The supervisors of every local channel; owned by the app's lifespan."""

    def __init__(self) -> None:
        self.supervisors: dict[str, LlamaServerSupervisor] = {}

    async def start(self, channels: Sequence[Channel]) -> list[Channel]:
        """Start a server per ``llamacpp`` channel; return the channels with their addresses."""
        resolved: list[Channel] = []
        try:
            for channel in channels:
                if channel.type != "llamacpp":
                    resolved.append(channel)
                    continue
                supervisor = LlamaServerSupervisor(server_config(channel))
                self.supervisors[channel.name] = supervisor
                await supervisor.start()
                resolved.append(channel.model_copy(update={"base_url": supervisor.base_url}))
        except BaseException:
            await self.stop()
            raise
        return resolved

    async def stop(self) -> None:
        for supervisor in self.supervisors.values():
            await supervisor.stop()
        self.supervisors.clear()
