"""The task gateway over plain HTTP, end to end: a real server with embedded workers, fake
upstreams speaking each provider's wire format, real database and media store."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reapi.config import build_config
from reapi.money import UNITS_PER_CREDIT, credits_to_units
from reapi.settings import Settings
from reapi.worker.webhooks import SIGNATURE_HEADER, verify
from tests.fakes.server import free_port
from tests.fakes.task_upstreams import MP3_BYTES, MP4_BYTES, PNG_1X1
from tests.task_gateway import (
    WEBHOOK_SECRET,
    TaskFakes,
    TaskGateway,
    WebhookReceiver,
    creates,
    task_config,
    task_config_raw,
)

REQUEST_ID = re.compile(r"^req_[0-9a-f-]{36}$")
C = UNITS_PER_CREDIT


@pytest.fixture(scope="module")
def fakes() -> Iterator[TaskFakes]:
    fakes = TaskFakes()
    yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def gw(
    fakes: TaskFakes, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TaskGateway]:
    settings = Settings(database_url=database_url, key_cache_seconds=0.2)
    media = tmp_path_factory.mktemp("media")
    gateway = TaskGateway(settings, task_config(fakes, media))
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def fresh(fakes: TaskFakes) -> None:
    fakes.reset()


def error_of(resp: httpx.Response, status: int, code: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    assert REQUEST_ID.match(body["error"]["request_id"])
    assert resp.headers["x-request-id"] == body["error"]["request_id"]
    return str(body["error"]["message"])


# Authentication -------------------------------------------------------------------------


def test_missing_authorization_is_10001(gw: TaskGateway) -> None:
    resp = gw.http.post("/api/v1/images/generations", json={"model": "gpt-image-2"})
    error_of(resp, 401, 10001)
    assert error_of(gw.http.get("/api/v1/tasks/task_x"), 401, 10001)


def test_authorization_not_bearer_is_10002(gw: TaskGateway) -> None:
    _, key = gw.user()
    for header in (f"Basic {key}", key, "Bearer", "Token abc"):
        resp = gw.http.get("/api/v1/tasks", headers={"Authorization": header})
        error_of(resp, 401, 10002)


def test_unknown_key_is_10003(gw: TaskGateway) -> None:
    resp = gw.submit("rk_live_not-a-real-key", "images", {"model": "gpt-image-2", "prompt": "x"})
    error_of(resp, 401, 10003)
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_revoked_key_is_10004(gw: TaskGateway) -> None:
    _, key = gw.user()
    assert gw.http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"}).is_success
    gw.revoke(key)
    time.sleep(0.3)  # revocations made elsewhere apply within key_cache_seconds
    resp = gw.http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"})
    error_of(resp, 401, 10004)


def test_chat_key_is_refused_here_and_task_key_on_chat(gw: TaskGateway) -> None:
    name, task_key = gw.user()
    chat_key = gw.chat_key(name)
    resp = gw.submit(chat_key, "images", {"model": "gpt-image-2", "prompt": "x"})
    assert "chat key" in error_of(resp, 401, 10003)
    chat = gw.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-5.5", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {task_key}"},
    )
    assert chat.status_code == 401
    assert chat.json()["error"]["code"] == "invalid_api_key"


def test_key_restricted_to_other_models_is_10006(gw: TaskGateway) -> None:
    _, key = gw.user(models=["veo3.1-fast"])
    resp = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"})
    error_of(resp, 403, 10006)


# Routing and validation errors keep the task envelope -----------------------------------


def test_unknown_route_wrong_method_and_bad_json(gw: TaskGateway) -> None:
    _, key = gw.user()
    auth = {"Authorization": f"Bearer {key}"}
    error_of(gw.http.get("/api/v1/nothing-here", headers=auth), 404, 20019)
    resp = gw.http.get("/api/v1/images/generations", headers=auth)
    error_of(resp, 405, 20020)
    assert "POST" in resp.headers["allow"]
    resp = gw.http.post(
        "/api/v1/images/generations", content=b"{not json", headers=auth | {"content-type": "x"}
    )
    error_of(resp, 400, 20001)
    error_of(gw.http.post("/api/v1/images/generations", json=[1], headers=auth), 400, 20001)


def test_validation_codes(gw: TaskGateway) -> None:
    _, key = gw.user()
    assert "prompt" in error_of(gw.submit(key, "images", {"model": "gpt-image-2"}), 400, 20002)
    error_of(gw.submit(key, "images", {"model": "no-such-model", "prompt": "x"}), 400, 20003)
    error_of(gw.submit(key, "videos", {"model": "gpt-image-2", "prompt": "x"}), 400, 20004)
    error_of(
        gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x", "quality": "hd"}),
        400,
        20011,
    )
    error_of(
        gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x", "resolution": "8k"}),
        400,
        20007,
    )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", 20014),
        ("ftp://example.com/a.png", 20013),
        ("http://user:pw@example.com/a.png", 20013),
        ("http://169.254.169.254/latest/meta-data/", 20015),
        ("http://10.0.0.7/a.png", 20015),
        ("http://192.168.1.1/a.png", 20015),
        ("http://[::1]/a.png", 20015),
        ("http://[::ffff:10.0.0.1]/a.png", 20015),
        ("http://localhost/a.png", 20015),
        ("http://metadata.google.internal/a.png", 20015),
        ("http://intranet/a.png", 20015),
        ("http://no-such-host.invalid/a.png", 20016),
    ],
)
def test_ssrf_attempts_are_refused_before_any_charge(
    gw: TaskGateway, fakes: TaskFakes, url: str, code: int
) -> None:
    name, key = gw.user("100")
    body = {"model": "gpt-image-2", "prompt": "x", "image_urls": [url]}
    assert "image_urls.0" in error_of(gw.submit(key, "images", body), 400, code)
    body = {"model": "gpt-image-2", "prompt": "x", "callback_url": url}
    error_of(gw.submit(key, "images", body), 400, code)
    assert gw.balance(name) == 100 * C
    assert creates(fakes.openai) == 0


# Billing --------------------------------------------------------------------------------


def test_insufficient_credits_is_402_with_no_task_and_no_upstream_call(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    name, key = gw.user("19.999999")
    message = error_of(
        gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}), 402, 30001
    )
    assert "20" in message
    listed = gw.http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"}).json()
    assert listed["data"] == []
    assert gw.balance(name) == credits_to_units("19.999999")
    _, broke = gw.user(None)
    error_of(gw.submit(broke, "images", {"model": "gpt-image-2", "prompt": "x"}), 402, 30001)
    assert creates(fakes.openai) == 0


def test_model_without_a_channel_is_50003_and_free(gw: TaskGateway) -> None:
    name, key = gw.user("1000")
    body = {"model": "audio-multistem-splitter", "audio_url": "https://example.com/a.mp3",
            "stem_list": ["vocals"]}  # fmt: skip
    error_of(gw.submit(key, "audio", body), 503, 50003)
    assert gw.balance(name) == 1000 * C


def test_concurrent_submits_never_overdraw(gw: TaskGateway, fakes: TaskFakes) -> None:
    name, key = gw.user("100")  # five 20-credit images
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def submit() -> None:
        with httpx.Client(base_url=gw.url, timeout=30) as client:
            resp = client.post(
                "/api/v1/images/generations",
                json={"model": "gpt-image-2", "prompt": "race"},
                headers={"Authorization": f"Bearer {key}"},
            )
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=submit) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r.json()["id"] for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 402]
    assert len(accepted) == 5 and len(refused) == 19, [r.status_code for r in results]
    assert all(r.json()["error"]["code"] == 30001 for r in refused)
    for task_id in accepted:
        assert gw.ledger(task_id)[0] == ("charge", -20 * C)
        assert gw.wait(key, task_id)["status"] == "completed"
        assert gw.ledger(task_id) == [("charge", -20 * C)]
    assert gw.balance(name) == 0
    assert gw.verify() == []


# The happy paths: image, video, audio ---------------------------------------------------


def test_image_end_to_end(gw: TaskGateway, fakes: TaskFakes) -> None:
    name, key = gw.user("1000")
    resp = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "a fox", "resolution": "2k"})
    assert resp.status_code == 200, resp.text
    submitted = resp.json()
    assert set(submitted) == {"id", "model", "status", "created_at"}
    assert re.match(r"^task_[0-9a-f]{32}$", submitted["id"])
    assert submitted["status"] == "processing" and submitted["model"] == "gpt-image-2"
    task = gw.wait(key, submitted["id"])
    assert task["status"] == "completed", task
    assert task["error"] is None
    [url] = task["output"]["image_urls"]
    assert url == f"{gw.url}/media/tasks/{submitted['id'][5:]}/0.png"
    image = httpx.get(url)
    assert image.status_code == 200 and image.content == PNG_1X1
    assert image.headers["content-type"] == "image/png"
    assert gw.balance(name) == (1000 - 35) * C
    assert gw.ledger(submitted["id"]) == [("charge", -35 * C)]
    assert creates(fakes.openai) == 1
    assert gw.verify() == []


def test_video_through_fal_queue(gw: TaskGateway, fakes: TaskFakes) -> None:
    fakes.fal.behaviour.polls_before_done = 3
    name, key = gw.user("1000")
    task_id = gw.submit(key, "videos", {"model": "veo3.1-fast", "prompt": "waves"}).json()["id"]
    task = gw.wait(key, task_id)
    assert task["status"] == "completed", task
    [url] = task["output"]["video_urls"]
    assert url.endswith("/0.mp4")
    assert httpx.get(url).content == MP4_BYTES
    assert gw.balance(name) == 600 * C
    assert creates(fakes.fal) == 1


def test_video_through_replicate_priced_per_second_and_tier(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    fakes.replicate.behaviour.polls_before_done = 2
    name, key = gw.user("2000")
    frame = f"{fakes.media.base_url}/frame.png"
    body = {"model": "veo3.1-fast-official", "prompt": "waves", "duration": 6,
            "resolution": "1080p", "first_frame_image": frame}  # fmt: skip
    task_id = gw.submit(key, "videos", body).json()["id"]
    task = gw.wait(key, task_id)
    assert task["status"] == "completed", task
    assert httpx.get(task["output"]["video_urls"][0]).content == MP4_BYTES
    assert gw.balance(name) == (2000 - 6 * 120) * C
    # The catalog entry says how Replicate names the first frame; the customer's name is ours.
    sent = next(r.json["input"] for r in fakes.replicate.requests if r.method == "POST")
    assert sent["image"] == frame and "first_frame_image" not in sent


def test_audio_through_a_chained_gateway_with_tracks(gw: TaskGateway, fakes: TaskFakes) -> None:
    name, key = gw.user("1000")
    body = {"model": "mureka-v9-song", "lyrics": "la la la", "number_of_songs": 2}
    task_id = gw.submit(key, "audio", body).json()["id"]
    task = gw.wait(key, task_id)
    assert task["status"] == "completed", task
    urls = task["output"]["audio_urls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["0.mp3", "1.mp3"]
    assert [t["label"] for t in task["output"]["tracks"]] == ["vocals", "no_vocals"]
    for url in urls:
        assert httpx.get(url).content == MP3_BYTES
    assert gw.balance(name) == (1000 - 120) * C


def test_per_source_minute_model_is_priced_from_the_probed_source(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    name, key = gw.user("1000")
    body = {"model": "audio-stem-separator", "stem": "vocals",
            "audio_url": f"{fakes.media.base_url}/song.wav"}  # fmt: skip
    task_id = gw.submit(key, "audio", body).json()["id"]
    assert gw.wait(key, task_id)["status"] == "completed"
    assert gw.balance(name) == (1000 - 2 * 200) * C  # 61.5 s is two started minutes
    body["audio_url"] = f"{fakes.media.base_url}/missing.wav"
    error_of(gw.submit(key, "audio", body), 400, 20018)


# Failures and refunds -------------------------------------------------------------------


def test_failed_task_is_refunded_exactly_once(gw: TaskGateway, fakes: TaskFakes) -> None:
    fakes.fal.behaviour.outcome = "fail"
    fakes.fal.behaviour.polls_before_done = 2
    name, key = gw.user("1000")
    task_id = gw.submit(key, "videos", {"model": "veo3.1-fast", "prompt": "waves"}).json()["id"]
    assert gw.balance(name) == 600 * C
    task = gw.wait(key, task_id)
    assert task["status"] == "failed"
    assert task["output"] is None
    assert task["error"]["code"] == 50002
    assert task["error"]["message"] == "Upstream provider failed"
    assert REQUEST_ID.match(task["error"]["request_id"])
    assert gw.balance(name) == 1000 * C
    for _ in range(5):
        assert gw.get(key, task_id).json()["status"] == "failed"
    assert gw.ledger(task_id) == [("charge", -400 * C), ("refund", 400 * C)]
    assert gw.verify() == []


def test_refund_is_visible_whenever_failed_is(gw: TaskGateway, fakes: TaskFakes) -> None:
    """Watch a failing task as closely as a client can: the first poll that shows `failed` is
    followed by a ledger read that already holds the refund (the worker-level test proves
    they commit together)."""
    fakes.openai.behaviour.outcome = "fail"
    name, key = gw.user("100")
    task_id = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
    while (task := gw.get(key, task_id).json())["status"] == "processing":
        pass
    assert gw.ledger(task_id) == [("charge", -20 * C), ("refund", 20 * C)]
    assert task["error"]["code"] == 50006  # the upstream refused the content
    assert gw.balance(name) == 100 * C


def test_expired_output_url_fails_and_refunds(gw: TaskGateway, fakes: TaskFakes) -> None:
    fakes.replicate.behaviour.expire_after_downloads = 0
    name, key = gw.user("1000")
    body = {"model": "veo3.1-fast-official", "prompt": "x", "duration": 4, "resolution": "720p"}
    task_id = gw.submit(key, "videos", body).json()["id"]
    task = gw.wait(key, task_id)
    assert task["status"] == "failed" and task["error"]["code"] == 50005
    assert gw.balance(name) == 1000 * C


def test_failures_tell_the_client_no_upstream_host_and_the_log_the_cause(
    gw: TaskGateway, fakes: TaskFakes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="reapi")
    port = free_port()  # nothing listens there
    dead = f"http://127.0.0.1:{port}"
    name, key = gw.user("1000")
    # 50005: the upstream's output sits on a host that refuses the connection.
    fakes.replicate.behaviour.output_origin = dead
    body = {"model": "veo3.1-fast-official", "prompt": "x", "duration": 4, "resolution": "720p"}
    lost = gw.wait(key, gw.submit(key, "videos", body).json()["id"])["error"]
    assert lost["code"] == 50005
    assert lost["message"] == (
        "Upstream output could not be retrieved: the file could not be downloaded"
    )
    # 50002: the chained gateway fails its create call with words about its own internals.
    fakes.reapi.behaviour.create_status = 500
    fakes.reapi.behaviour.create_error = "database at 10.1.2.3:5432 is down"
    failed = gw.wait(key, gw.submit(key, "audio", {"model": "mureka-v9-song", "lyrics": "la"})
                     .json()["id"])["error"]  # fmt: skip
    assert (failed["code"], failed["message"]) == (50002, "Upstream provider failed")
    # 20018: the client's source sits on that dead host.
    source = {"model": "audio-stem-separator", "stem": "vocals", "audio_url": f"{dead}/a.wav"}
    refused = gw.submit(key, "audio", source).json()["error"]
    assert refused["code"] == 20018
    assert refused["message"] == (
        "audio_url: Source media could not be fetched or its length read: "
        "the file could not be downloaded"
    )
    for error in (lost, failed, refused):
        assert str(port) not in error["message"] and "Error" not in error["message"]
        assert REQUEST_ID.match(error["request_id"])
    # The operator finds each cause in the log by the request id the client was given.
    logged = [r.getMessage() for r in caplog.records]
    for error, cause in ((lost, f"127.0.0.1:{port}"), (failed, "10.1.2.3:5432"),
                         (refused, f"127.0.0.1:{port}")):  # fmt: skip
        assert any(error["request_id"] in line and cause in line for line in logged), error
    assert gw.balance(name) == 1000 * C


def test_deadline_fails_and_refunds(gw: TaskGateway, fakes: TaskFakes) -> None:
    fakes.fal.behaviour.polls_before_done = 10_000
    name, key = gw.user("10")
    task_id = gw.submit(key, "videos", {"model": "slow-video", "prompt": "x"}).json()["id"]
    assert gw.balance(name) == credits_to_units("2.5")
    task = gw.wait(key, task_id, timeout=15)
    assert task["status"] == "failed" and task["error"]["code"] == 50004
    assert gw.ledger(task_id) == [("charge", -credits_to_units("7.5")),
                                  ("refund", credits_to_units("7.5"))]  # fmt: skip
    assert creates(fakes.fal) == 1


# Polling and listing --------------------------------------------------------------------


def test_only_the_owner_sees_a_task(gw: TaskGateway) -> None:
    _, owner = gw.user()
    _, other = gw.user()
    task_id = gw.submit(owner, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
    assert gw.get(owner, task_id).status_code == 200
    error_of(gw.get(other, task_id), 404, 20017)
    error_of(gw.get(owner, "task_" + "0" * 32), 404, 20017)
    gw.wait(owner, task_id)


def test_list_own_tasks_with_cursor_and_status(gw: TaskGateway, fakes: TaskFakes) -> None:
    _, key = gw.user("1000")
    _, stranger = gw.user("1000")
    theirs = gw.submit(stranger, "images", {"model": "gpt-image-2", "prompt": "not yours"})
    gw.wait(stranger, theirs.json()["id"])
    ids = [
        gw.submit(key, "images", {"model": "gpt-image-2", "prompt": f"n{i}"}).json()["id"]
        for i in range(5)
    ]
    for task_id in ids:
        gw.wait(key, task_id)
    auth = {"Authorization": f"Bearer {key}"}
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": "2", **({"after": after} if after else {})}
        page = gw.http.get("/api/v1/tasks", params=params, headers=auth).json()
        seen += [t["id"] for t in page["data"]]
        assert len(page["data"]) <= 2
        if not page["has_more"]:
            break
        after = page["next_after"]
    assert seen == list(reversed(ids))
    done = gw.http.get("/api/v1/tasks", params={"status": "completed"}, headers=auth).json()
    assert {t["id"] for t in done["data"]} == set(ids)
    assert done["data"][0]["output"]["image_urls"]
    none = gw.http.get("/api/v1/tasks", params={"status": "failed"}, headers=auth).json()
    assert none["data"] == []
    error_of(gw.http.get("/api/v1/tasks", params={"status": "bogus"}, headers=auth), 400, 20007)
    error_of(gw.http.get("/api/v1/tasks", params={"limit": "0"}, headers=auth), 400, 20006)
    error_of(gw.http.get("/api/v1/tasks", params={"limit": "x"}, headers=auth), 400, 20005)
    error_of(gw.http.get("/api/v1/tasks", params={"after": "task_nope"}, headers=auth), 404, 20017)


def test_list_and_poll_refuse_malformed_parameters_in_the_task_envelope(gw: TaskGateway) -> None:
    _, key = gw.user()
    auth = {"Authorization": f"Bearer {key}"}
    # '²' passes str.isdigit() and int() refuses it: once a 500, now a type error.
    for limit, code in (("²", 20005), ("\u0661\u0660", 20005), ("-1", 20005), ("1e3", 20005),
                        ("101", 20006), ("9" * 40, 20005)):  # fmt: skip
        resp = gw.http.get("/api/v1/tasks", params={"limit": limit}, headers=auth)
        assert "limit" in error_of(resp, 400, code)
    # A NUL cannot be in a task id; PostgreSQL would refuse the query instead of answering.
    for after in ("task_\x00", "t" * 300):
        error_of(gw.http.get("/api/v1/tasks", params={"after": after}, headers=auth), 404, 20017)
    for task_id in ("task_%00", "t" * 300):
        error_of(gw.get(key, task_id), 404, 20017)


# Idempotency ----------------------------------------------------------------------------


def test_without_idempotency_key_every_post_is_a_new_charged_task(gw: TaskGateway) -> None:
    name, key = gw.user("100")
    body = {"model": "gpt-image-2", "prompt": "same"}
    first, second = gw.submit(key, "images", body).json(), gw.submit(key, "images", body).json()
    assert first["id"] != second["id"]
    assert gw.balance(name) == 60 * C
    gw.wait(key, first["id"])
    gw.wait(key, second["id"])


def test_idempotency_key_returns_the_original_task_without_a_new_charge(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    name, key = gw.user("100")
    body = {"model": "gpt-image-2", "prompt": "once"}
    first = gw.submit(key, "images", body, **{"Idempotency-Key": "k-1"})
    again = gw.submit(key, "images", body, **{"Idempotency-Key": "k-1"})
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert gw.balance(name) == 80 * C
    gw.wait(key, first.json()["id"])
    assert creates(fakes.openai) == 1
    changed = gw.submit(key, "images", {**body, "prompt": "other"}, **{"Idempotency-Key": "k-1"})
    error_of(changed, 400, 20012)
    # Keys are per user: another user's identical key is unrelated.
    _, other = gw.user("100")
    assert (
        gw.submit(other, "images", body, **{"Idempotency-Key": "k-1"}).json()["id"]
        != (first.json()["id"])
    )


# Media ----------------------------------------------------------------------------------


def test_media_urls_reject_anything_but_task_outputs(gw: TaskGateway) -> None:
    for path in ("/media/tasks/abc/../../etc/passwd", "/media/tasks/abc/0.png",
                 "/media/tasks/ABC%2F..%2F/0.png"):  # fmt: skip
        assert gw.http.get(path).status_code == 404


def test_outputs_land_in_the_configured_directory(gw: TaskGateway) -> None:
    _, key = gw.user()
    task_id = gw.submit(key, "images", {"model": "gpt-image-2", "prompt": "x"}).json()["id"]
    assert gw.wait(key, task_id)["status"] == "completed"
    media_dir = Path(gw.config.tasks.media_dir)
    assert (media_dir / "tasks" / task_id[5:] / "0.png").read_bytes() == PNG_1X1


@pytest.fixture(scope="module")
def strict_gw(
    fakes: TaskFakes, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TaskGateway]:
    """A gateway whose address guard allows nothing private, with one channel of its own (a
    chained gateway on 127.0.0.1), so no other gateway's worker takes its tasks, and no
    webhooks, so it does not deliver (and fail to deliver) the other gateway's."""
    raw = task_config_raw(
        fakes, tmp_path_factory.mktemp("strict-media"), allow_private=[], webhook_secret=None
    )
    raw["channels"] = [
        {"name": "private-partner", "type": "reapi", "base_url": fakes.reapi.base_url + "/api/v1",
         "api_key": "test-key", "models": ["mureka-v9-song"]},
    ]  # fmt: skip
    settings = Settings(database_url=database_url, key_cache_seconds=0.2)
    gateway = TaskGateway(settings, build_config(raw))
    yield gateway
    gateway.stop()


def test_outputs_on_the_channels_own_private_origin_are_mirrored(
    strict_gw: TaskGateway, fakes: TaskFakes
) -> None:
    _, key = strict_gw.user("1000")
    song = {"model": "mureka-v9-song", "lyrics": "la la", "number_of_songs": 2}
    task = strict_gw.wait(key, strict_gw.submit(key, "audio", song).json()["id"])
    assert task["status"] == "completed", task
    for url in task["output"]["audio_urls"]:
        assert url.startswith(strict_gw.url) and httpx.get(url).content == MP3_BYTES


@pytest.mark.parametrize("how", ["elsewhere", "redirected"])
def test_outputs_off_the_channels_origin_still_pass_the_guard(
    strict_gw: TaskGateway, fakes: TaskFakes, how: str
) -> None:
    other = fakes.replicate  # another private origin, which records what reaches it
    if how == "elsewhere":
        fakes.reapi.behaviour.output_origin = other.base_url
    else:
        fakes.reapi.behaviour.redirect_media_to = other.base_url
    name, key = strict_gw.user("1000")
    song = {"model": "mureka-v9-song", "lyrics": "la la"}
    task = strict_gw.wait(key, strict_gw.submit(key, "audio", song).json()["id"])
    assert task["status"] == "failed" and task["error"]["code"] == 50005
    assert other.requests == []
    assert strict_gw.balance(name) == 1000 * C


# Webhooks -------------------------------------------------------------------------------


def test_webhook_delivers_the_final_task_once_signed_with_retries(
    gw: TaskGateway, fakes: TaskFakes
) -> None:
    receiver = WebhookReceiver(fakes.loop).start()
    try:
        receiver.answers = [500, 503]  # two failed attempts, then accepted
        fakes.fal.behaviour.outcome = "fail"
        _, key = gw.user("1000")
        body = {"model": "veo3.1-fast", "prompt": "x", "callback_url": receiver.url}
        task_id = gw.submit(key, "videos", body).json()["id"]
        final = gw.wait(key, task_id)
        deadline = time.monotonic() + 15
        while len(receiver.deliveries) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # nothing more may arrive once one was accepted
        assert len(receiver.deliveries) == 3
        for headers, raw in receiver.deliveries:
            assert verify(WEBHOOK_SECRET.encode(), headers[SIGNATURE_HEADER], raw)
            assert not verify(b"another secret", headers[SIGNATURE_HEADER], raw)
            assert headers["X-Reapi-Task-Id"] == task_id
        assert httpx.Response(200, content=receiver.deliveries[-1][1]).json() == final
        assert final["status"] == "failed"
    finally:
        receiver.stop()
