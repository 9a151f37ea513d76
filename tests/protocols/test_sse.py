from reapi.protocols.sse import SSEDecoder, SSEEvent


def decode(raw: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(raw) + decoder.close()


def test_events_comments_and_line_ends() -> None:
    raw = b": keep-alive\r\nevent: ping\r\ndata: {}\r\n\r\ndata: a\ndata: b\n\ndata:c\r\r"
    assert decode(raw) == [SSEEvent(b"{}", "ping"), SSEEvent(b"a\nb"), SSEEvent(b"c")]


def test_a_lone_empty_data_line_is_no_event() -> None:
    # WHATWG: an empty data buffer dispatches nothing; two empty lines are one line break.
    assert decode(b"data:\n\ndata: \n\nevent: x\n\n") == []
    assert decode(b"data:\ndata:\n\n") == [SSEEvent(b"\n")]
