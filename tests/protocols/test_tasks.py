import re

from reapi.protocols.tasks import (
    TaskError,
    TaskErrorCode,
    TaskFailure,
    TaskOutput,
    TaskView,
    Track,
    error_envelope,
    new_request_id,
    new_task_id,
    render_submitted,
    render_task,
)

# 404, 405 and 413 are request mistakes too: unknown task or route, wrong method, body too large.
CATEGORY_STATUSES = {
    1: {401, 403},
    2: {400, 404, 405, 413},
    3: {402},
    4: {429},
    5: {500, 502, 503, 504},
}


def test_code_table_is_consistent() -> None:
    for code in TaskErrorCode:
        assert 10000 <= code <= 59999
        assert code.http_status in CATEGORY_STATUSES[code // 10000], code
        assert code.default_message
    # The rows published by the public docs keep their meaning.
    assert TaskErrorCode(10001).default_message == "Missing Authorization header"
    assert TaskErrorCode(20002).default_message == "Missing required parameter"
    assert int(TaskErrorCode.INSUFFICIENT_CREDITS) == 30001
    assert TaskErrorCode.TASK_NOT_FOUND.http_status == 404
    assert TaskErrorCode.UPSTREAM_TIMEOUT.http_status == 504
    assert TaskErrorCode.RATE_LIMITED.category == "rate_limit"


def test_error_envelope() -> None:
    rid = new_request_id()
    assert re.fullmatch(r"req_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", rid)
    error = TaskError(TaskErrorCode.MISSING_PARAMETER, param="prompt")
    assert error.http_status == 400 and error.message == "Missing required parameter"
    assert error_envelope(error, rid) == {
        "error": {"code": 20002, "message": "Missing required parameter", "request_id": rid}
    }
    assert error_envelope(TaskError(TaskErrorCode.INTERNAL_ERROR, "boom"), None) == {
        "error": {"code": 50001, "message": "boom"}
    }


def test_task_rendering() -> None:
    tid = new_task_id()
    assert re.fullmatch(r"task_[0-9a-f]{32}", tid)
    view = TaskView(tid, "gpt-image-2", "image", "processing", 1735000000)
    assert render_submitted(view) == {
        "id": tid,
        "model": "gpt-image-2",
        "status": "processing",
        "created_at": 1735000000,
    }
    assert render_task(view) == {**render_submitted(view), "output": None, "error": None}
    done = TaskView(
        tid, "audio-stem-separator", "audio", "completed", 1,
        TaskOutput(urls=["https://cdn/x/0.mp3"], tracks=[Track("audio", "vocals", "https://cdn/x/0.mp3")]),
    )  # fmt: skip
    assert render_task(done)["output"] == {
        "audio_urls": ["https://cdn/x/0.mp3"],
        "tracks": [{"type": "audio", "label": "vocals", "url": "https://cdn/x/0.mp3"}],
    }
    video = TaskView(tid, "v", "video", "completed", 1, TaskOutput(["u"], last_frame_url="f"))
    assert render_task(video)["output"] == {"video_urls": ["u"], "last_frame_url": "f"}
    failed = TaskView(
        tid, "v", "video", "failed", 1,
        error=TaskFailure(TaskErrorCode.UPSTREAM_TIMEOUT, "too slow", "req_1"),
    )  # fmt: skip
    body = render_task(failed)
    assert body["output"] is None
    assert body["error"] == {"code": 50004, "message": "too slow", "request_id": "req_1"}
    assert render_task(TaskView(tid, "v", "video", "failed", 1))["error"]["code"] == 50002
