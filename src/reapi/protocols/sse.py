"""Server-sent events framing, both directions.

The decoder is incremental: upstreams split events at arbitrary byte boundaries (even inside a
``\\r\\n`` pair), so it keeps whatever is incomplete until the next feed. It follows the WHATWG
event-stream rules that matter to API streams: ``\\n``, ``\\r\\n`` and ``\\r`` line ends, ``:``
comments, multi-line ``data`` joined with ``\\n``, and one optional space after the colon.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: bytes
    event: str | None = None


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """Frame one event. ``data`` must not contain line breaks (JSON from orjson never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class SSEDecoder:
    __slots__ = ("_buf", "_data", "_event")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk
        held = b""
        if b"\r" in buf:
            # A trailing \r may be the first half of \r\n: decide once the next byte arrives.
            if buf.endswith(b"\r"):
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop() + held
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                # A lone empty data line is no event (WHATWG: an empty data buffer dispatches
                # nothing), so a blank keep-alive never reads as a malformed event.
                if self._data and (self._data[0] or len(self._data) > 1):
                    events.append(SSEEvent(b"\n".join(self._data), self._event))
                self._data = []
                self._event = None
                continue
            if line[0] == 0x3A:  # ":" starts a comment (keep-alives)
                continue
            field, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._data.append(value)
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
        return events

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream: a final event without its blank line still counts."""
        events = self.feed(b"\n\n") if (self._buf or self._data) else []
        self._buf = b""
        return events
