from reapi.protocols.tasks import (
    TaskErrorCode,
    TaskOutput,
    TaskView,
    Track,
    render_task,
)
from reapi.providers.tasks.base import JobOutput, JobState, SubmitError
from reapi.providers.tasks.reapi import task_state
from reapi.services.tasks.outputs import job_failure, submit_failure, task_output, timeout_failure


def test_failure_codes() -> None:
    refused = submit_failure(
        SubmitError(
            "fal queue answered HTTP 400: moderated",
            certain=True,
            status=400,
            rejected=True,
            reason="moderated",
        )
    )
    assert refused.code == TaskErrorCode.UPSTREAM_REJECTED
    assert refused.message == "Upstream provider rejected the request: moderated"
    assert refused.detail == "fal queue answered HTTP 400: moderated"
    reset = "cannot reach upstream: ClientConnectorError(ConnectionKey(host='10.0.0.7', port=81))"
    broke = submit_failure(SubmitError(reset, certain=False))
    assert broke.code == TaskErrorCode.UPSTREAM_FAILED
    assert (broke.message, broke.detail) == ("Upstream provider failed", reset)
    oom = job_failure(JobState.failed("CUDA out of memory (/srv/predict.py:31)"))
    assert oom.code == TaskErrorCode.UPSTREAM_FAILED and "predict.py" not in oom.message
    assert oom.detail == "CUDA out of memory (/srv/predict.py:31)"
    nsfw = job_failure(JobState.failed("[50006] nsfw", refusal="nsfw"))
    assert nsfw.code == TaskErrorCode.UPSTREAM_REJECTED and nsfw.message.endswith(": nsfw")
    late = timeout_failure(900)
    assert late.code == TaskErrorCode.UPSTREAM_TIMEOUT and late.http_status == 504
    assert "900" in late.message


def test_task_output_keeps_order_and_labels() -> None:
    outputs = [
        (JobOutput(url="u0", label="vocals"), "https://cdn/0.mp3"),
        (JobOutput(url="u1", label="no_vocals"), "https://cdn/1.mp3"),
    ]
    assert task_output("audio", outputs) == TaskOutput(
        ["https://cdn/0.mp3", "https://cdn/1.mp3"],
        [
            Track("audio", "vocals", "https://cdn/0.mp3"),
            Track("audio", "no_vocals", "https://cdn/1.mp3"),
        ],
    )
    plain = task_output("image", [(JobOutput(data=b"png"), "https://cdn/0.png")])
    assert (list(plain.urls), list(plain.tracks)) == (["https://cdn/0.png"], [])


def test_what_we_render_the_reapi_adapter_reads() -> None:
    """Chained gateways: our own poll answer must parse back into the same outputs."""
    out = TaskOutput(["https://cdn/0.mp3"], [Track("audio", "vocals", "https://cdn/0.mp3")], None)
    body = render_task(TaskView("task_1", "m", "audio", "completed", 1, out))
    state = task_state(body)
    assert [(o.url, o.label) for o in state.outputs] == [("https://cdn/0.mp3", "vocals")]
    failed = render_task(TaskView("task_1", "m", "audio", "failed", 1))
    assert task_state(failed).status == "failed"
    assert task_state(render_task(TaskView("task_1", "m", "audio", "processing", 1))).status == (
        "processing"
    )


async def test_a_channel_origin_is_matched_exactly() -> None:
    import aiohttp

    from reapi.services.tasks.outputs import ChannelOrigin

    async with aiohttp.ClientSession() as session:
        origin = ChannelOrigin.of("http://10.0.0.5/api/v1", session)
        assert origin is not None
        for url in (
            "http://10.0.0.5/media/tasks/1/0.mp3",
            "http://10.0.0.5:80/x",
            "HTTP://10.0.0.5/x",
        ):
            assert origin.serves(url), url
        for url in (
            "https://10.0.0.5/x",
            "http://10.0.0.5:8080/x",
            "http://10.0.0.6/x",
            "http://10.0.0.5.nip.io/x",
            "http://10.0.0.5@169.254.169.254/x",
            "http://[::ffff:10.0.0.5]/x",
            "ftp://10.0.0.5/x",
            "not a url",
        ):
            assert not origin.serves(url), url
        assert ChannelOrigin.of("", session) is None
