"""What every chat upstream adapter provides.

An adapter knows how to address one upstream API: the URL for each wire format it speaks
natively and the headers that authenticate the gateway with the channel's own key. The chat
service does the HTTP call and the relaying, so adapters stay small and free of I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

from reapi.config import Channel
from reapi.protocols.relay import Scrub

WireFormat = Literal["openai", "anthropic"]


class Provider(Protocol):
    # Formats the upstream speaks natively, the preferred one first. A client speaking one of
    # them is relayed as is; any other client is translated into the first.
    formats: tuple[WireFormat, ...]

    def url(self, channel: Channel, fmt: WireFormat) -> str: ...

    def count_tokens_url(self, channel: Channel) -> str | None:
        """Where the upstream counts an Anthropic request's tokens, if it can."""
        ...

    def headers(
        self, channel: Channel, fmt: WireFormat, client_headers: Mapping[str, str]
    ) -> dict[str, str]: ...

    def scrub(self, fmt: WireFormat) -> Scrub | None:
        """What to remove from this upstream's answers in ``fmt`` before a client sees them
        (fields of its own, ids in another format's shape); None for an upstream that speaks
        the format as specified, so its relayed events are not even re-encoded."""
        ...
