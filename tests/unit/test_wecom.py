"""The WeCom client against the local receiver that enforces WeCom's limits."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from actors.delivery.render import BlockKind, render_parts, render_status, strip_header
from actors.delivery.settings import WeComSettings
from actors.delivery.wecom import WeComClient, upload_url
from actors.domain.errors import DeliveryError
from actors.util.ratelimit import RateLimiter
from tests.support.wecom_receiver import (
    MEDIA_MAX_BYTES,
    SEND_PATH,
    UPLOAD_PATH,
    BlockOrderError,
    WeComReceiver,
    assert_contiguous_blocks,
)

KEY = "b7d0c3e2-5a1f-4c7e-9f51-0123456789ab"  # looks like a real robot key


@pytest.fixture
def fast(wecom: WeComReceiver) -> WeComSettings:
    """Settings for KEY with a 1-second window on both sides and quick retries."""
    wecom.window_s = 1.0
    # Other keys of the receiver stand for requests' own webhooks: let them reach loopback.
    return wecom.settings(KEY, max_attempts=4, retry_base_s=0.02, timeout_s=2.0, allow_private_webhooks=True)


@pytest.fixture
async def client(fast: WeComSettings) -> AsyncIterator[WeComClient]:
    wecom_client = WeComClient(fast)
    yield wecom_client
    await wecom_client.aclose()


def url(settings: WeComSettings) -> str:
    assert settings.webhook_url is not None
    return settings.webhook_url.get_secret_value()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_markdown_and_text_arrive(wecom: WeComReceiver, fast: WeComSettings, client: WeComClient) -> None:
    await client.send(url(fast), "**粗体** 和 `代码`\n第二行")
    await client.send(url(fast), "纯文本", "text")
    received = [(m.key, m.msgtype, m.content) for m in wecom.messages()]
    assert received == [(KEY, "markdown", "**粗体** 和 `代码`\n第二行"), (KEY, "text", "纯文本")]


@pytest.mark.parametrize("msgtype", ["markdown", "text"])
async def test_rendered_parts_are_accepted_and_rebuild_the_text(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient, msgtype: str
) -> None:
    text = "\n\n".join(f"这一段讲的是视频转录的第{i}个要点。" * 12 for i in range(40))  # ~40 KB of CJK
    parts = render_parts(BlockKind.PROOFREAD, "一个很长的视频", text, msgtype)
    assert len(parts) > 5
    for part in parts:
        await client.send(url(fast), part, msgtype)
    arrived = wecom.messages(KEY)
    assert "".join(strip_header(m.content) for m in arrived) == text
    assert assert_contiguous_blocks(arrived, ["一个很长的视频"]) == {"一个很长的视频": {"校对": len(parts)}}


@pytest.mark.parametrize(("msgtype", "limit"), [("markdown", 4096), ("text", 2048)])
async def test_too_long_is_refused_at_once(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient, msgtype: str, limit: int
) -> None:
    await client.send(url(fast), "中" * (limit // 3) + "a" * (limit % 3), msgtype)  # exactly the limit: fine
    with pytest.raises(DeliveryError) as caught:
        await client.send(url(fast), "a" * (limit + 1), msgtype)
    assert caught.value.errcode == 40058
    assert len(wecom.requests) == 2  # no retry of a permanent refusal
    assert len(wecom.messages()) == 1


@pytest.mark.parametrize("key", ["unknown-key-0123456789", ""])
async def test_bad_webhook_is_permanent(wecom: WeComReceiver, client: WeComClient, key: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await client.send(wecom.webhook_url(key, known=False), "hello")
    assert caught.value.errcode == 93000
    assert len(wecom.requests) == 1


async def test_url_that_is_not_a_webhook_is_permanent(wecom: WeComReceiver, client: WeComClient) -> None:
    with pytest.raises(DeliveryError) as caught:
        await client.send(f"http://127.0.0.1:{wecom.port}/not/the/webhook?key={KEY}", "hello")
    assert caught.value.errcode == 93000


@pytest.mark.parametrize(
    "injected", [("45009",), ("-1",), ("500",), ("reset",), ("-1", "reset", "500"), ("45009", "-1", "502")]
)
async def test_transient_failures_are_retried_and_delivered_once(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient, injected: tuple[str, ...]
) -> None:
    wecom.script(*injected)
    await client.send(url(fast), "终于送达")
    assert [m.content for m in wecom.messages()] == ["终于送达"]
    assert len(wecom.requests) == len(injected) + 1
    assert not wecom.pending_script


async def test_rate_limited_answer_waits_a_window(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient
) -> None:
    wecom.script("45009")
    started = time.monotonic()
    await client.send(url(fast), "等一等")
    assert time.monotonic() - started >= fast.window_s  # WeCom's window has to slide first
    first, second = wecom.requests
    assert second.arrived_at - first.arrived_at >= fast.window_s


async def test_timeout_is_retried(wecom: WeComReceiver, fast: WeComSettings) -> None:
    settings = fast.model_copy(update={"timeout_s": 0.3})
    client = WeComClient(settings)
    try:
        wecom.script("slow:10")
        started = time.monotonic()
        await client.send(url(settings), "慢")
        assert time.monotonic() - started < 8.0  # the retry went out without waiting for the slow answer
    finally:
        await client.aclose()
    # The timed-out request had reached the group all the same: at-least-once, never less.
    deadline = time.monotonic() + 5
    while len(wecom.messages()) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert [m.content for m in wecom.messages()] == ["慢", "慢"]


async def test_gives_up_after_max_attempts_with_the_last_errcode(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient
) -> None:
    wecom.script(*["-1"] * fast.max_attempts)
    with pytest.raises(DeliveryError) as caught:
        await client.send(url(fast), "不会到")
    assert caught.value.errcode == -1
    assert len(wecom.requests) == fast.max_attempts
    assert not wecom.messages()


async def test_limiter_keeps_within_20_per_window(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient
) -> None:
    started = time.monotonic()
    for number in range(25):
        await client.send(url(fast), f"第{number}条")
    elapsed = time.monotonic() - started
    assert [r.errcode for r in wecom.requests] == [0] * 25  # the receiver refused none
    assert [m.content for m in wecom.messages()] == [f"第{n}条" for n in range(25)]
    assert elapsed >= wecom.window_s


async def test_limiter_holds_for_concurrent_sends(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient
) -> None:
    await asyncio.gather(*(client.send(url(fast), f"并发{n}") for n in range(25)))
    assert [r.errcode for r in wecom.requests] == [0] * 25
    assert sorted(m.content for m in wecom.messages()) == sorted(f"并发{n}" for n in range(25))


async def test_groups_are_limited_separately(wecom: WeComReceiver) -> None:
    # A 60 s window: were the two groups sharing one limiter, the 21st send would wait a
    # whole minute (and the test time out); separate limiters send all 40 at once.
    wecom.window_s = 60.0
    settings = wecom.settings(KEY, retry_base_s=0.02, timeout_s=5.0)
    other = wecom.webhook_url("another-group-key-000000")
    client = WeComClient(settings, trusted_webhooks=[url(settings), other])
    try:
        async with asyncio.timeout(30):
            await asyncio.gather(*(client.send(w, str(n)) for n in range(20) for w in (url(settings), other)))
    finally:
        await client.aclose()
    assert len(wecom.messages(KEY)) == len(wecom.messages("another-group-key-000000")) == 20
    assert all(r.errcode == 0 for r in wecom.requests)  # the receiver never had to refuse one


async def test_webhook_key_never_logged(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wecom.script("-1", "500", "reset", "-1")
    errors: list[DeliveryError] = []
    for webhook in (url(fast), f"http://127.0.0.1:{free_port()}/cgi-bin/webhook/send?key={KEY}"):
        with pytest.raises(DeliveryError) as caught:
            await client.send(webhook, "失败的消息")
        errors.append(caught.value)
    assert [e.errcode for e in errors] == [-1, None]  # busy to the end; nobody listening
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the URL…
    assert "key=b7d…" in caplog.text  # …redacted
    assert KEY not in caplog.text
    assert KEY[:12] not in caplog.text
    assert all(KEY not in str(e) and KEY not in repr(e.args) for e in errors)


async def test_status_notice_is_a_text_message(wecom: WeComReceiver, fast: WeComSettings, client: WeComClient) -> None:
    await client.send(url(fast), render_status("失败：" + "很长的原因" * 500), "text")
    (message,) = wecom.messages()
    assert message.content.startswith("【状态】失败：") and message.content.endswith("…")


# ---- files: upload_media, then a `file` message ------------------------------------------

LONG_TEXT = "第一段：视频转录的全文。\n\n第二段，还有更多内容！" * 200


async def test_an_operator_webhook_on_loopback_is_used_as_given(wecom: WeComReceiver, fast: WeComSettings) -> None:
    operator = WeComClient(fast.model_copy(update={"allow_private_webhooks": False}), trusted_webhooks=[url(fast)])
    try:
        await operator.send(url(fast), "经由内网中转")
        await operator.send_file(url(fast), "全文.txt", "全文".encode())
    finally:
        await operator.aclose()

    assert [m.content for m in wecom.messages()] == ["经由内网中转", "[文件] 全文.txt"]


async def test_any_other_webhook_on_loopback_is_refused_before_connecting(
    wecom: WeComReceiver, fast: WeComSettings
) -> None:
    other = wecom.webhook_url("from-a-request")
    guarded = WeComClient(fast.model_copy(update={"allow_private_webhooks": False}), trusted_webhooks=[url(fast)])
    try:
        with pytest.raises(DeliveryError) as refused:
            await guarded.send(other, "不该送达")
    finally:
        await guarded.aclose()

    assert refused.value.errcode == 93000
    assert "not a public address" in refused.value.message
    assert wecom.requests == []


def test_upload_url_is_the_webhook_with_upload_media() -> None:
    assert (
        upload_url(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}")
        == f"https://qyapi.weixin.qq.com/cgi-bin/webhook/upload_media?key={KEY}&type=file"
    )


async def test_file_is_uploaded_then_sent(wecom: WeComReceiver, fast: WeComSettings, client: WeComClient) -> None:
    await client.send_file(url(fast), "视频-校对.txt", LONG_TEXT.encode())
    (message,) = wecom.messages(KEY)
    assert (message.msgtype, message.filename, message.text) == ("file", "视频-校对.txt", LONG_TEXT)
    assert [r.path for r in wecom.requests] == [UPLOAD_PATH, SEND_PATH]


@pytest.mark.parametrize("injected", [("-1",), ("45009",), ("500",), ("reset",), ("slow:0", "-1")])
async def test_transient_upload_or_file_failures_are_retried(
    wecom: WeComReceiver,
    fast: WeComSettings,
    client: WeComClient,
    caplog: pytest.LogCaptureFixture,
    injected: tuple[str, ...],
) -> None:
    caplog.set_level(logging.DEBUG)
    wecom.script(*injected)  # ("slow:0", "-1"): the upload passes, the file message is busy once
    await client.send_file(url(fast), "重试.txt", LONG_TEXT.encode())
    (message,) = wecom.messages(KEY)
    assert message.text == LONG_TEXT
    assert len(wecom.requests) == len(injected) + (1 if injected[0] == "slow:0" else 2)
    assert KEY not in caplog.text


@pytest.mark.parametrize("size", [0, 5, MEDIA_MAX_BYTES + 1], ids=["0 B", "5 B", "20 MB + 1"])
async def test_upload_of_a_bad_size_is_refused_for_good_before_any_request(
    wecom: WeComReceiver, fast: WeComSettings, client: WeComClient, size: int
) -> None:
    with pytest.raises(DeliveryError) as caught:
        await client.send_file(url(fast), "大小不对.txt", b"x" * size)
    assert caught.value.errcode == 40006  # what WeCom would answer
    assert f"{size} bytes" in caught.value.message
    assert KEY not in str(caught.value) and KEY not in repr(caught.value.args)
    assert wecom.requests == []  # checked here: no request spent on it


async def test_expired_media_id_is_permanent(wecom: WeComReceiver, fast: WeComSettings, client: WeComClient) -> None:
    wecom.media_ttl_s = 0  # the upload's media_id is no longer valid when the file message arrives
    with pytest.raises(DeliveryError) as caught:
        await client.send_file(url(fast), "过期.txt", LONG_TEXT.encode())
    assert caught.value.errcode == 40007
    assert KEY not in str(caught.value)
    assert [(r.path, r.errcode) for r in wecom.requests] == [(UPLOAD_PATH, 0), (SEND_PATH, 40007)]
    assert not wecom.messages()


async def test_receiver_checks_uploads_like_wecom(wecom: WeComReceiver) -> None:
    """Wrong type, a missing `media` part and an unknown media_id get WeCom's errcodes."""
    webhook = wecom.webhook_url("k-000000000000")
    upload = upload_url(webhook)
    media = {"media": ("a.txt", b"123456", "application/octet-stream")}
    async with httpx.AsyncClient() as http:
        answers = [
            (await http.post(upload.replace("type=file", "type=image"), files=media)).json()["errcode"],
            (await http.post(upload, files={"other": ("a.txt", b"123456")})).json()["errcode"],
            (await http.post(upload, content=b"123456")).json()["errcode"],
            (await http.post(webhook, json={"msgtype": "file", "file": {"media_id": "never-uploaded"}})).json()[
                "errcode"
            ],
        ]
        uploaded = (await http.post(upload, files=media)).json()
        other_group = wecom.webhook_url("k-111111111111")  # a media_id belongs to the robot that uploaded it
        answers.append(
            (await http.post(other_group, json={"msgtype": "file", "file": {"media_id": uploaded["media_id"]}})).json()[
                "errcode"
            ]
        )
    assert answers == [40005, 44001, 44001, 40007, 40007]
    assert uploaded["errcode"] == 0 and uploaded["type"] == "file"
    assert not wecom.messages()


# ---- the rate limiter alone, on a fake clock -------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_rate_limiter_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 10.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(5):
        await limiter.acquire("a")
        times.append(clock.now)
        clock.now += 1.0  # each send takes a second
    assert times == [0.0, 1.0, 10.0, 11.0, 20.0]
    before = clock.now
    await limiter.acquire("b")  # another robot has its own window
    assert clock.now == before


async def test_rate_limiter_slot_counts_from_the_end_of_the_attempt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 10.0, clock=clock, sleep=clock.sleep)
    async with limiter.slot("a"):
        clock.now += 3.0  # a slow request: the server may have counted it as late as t=3
    await limiter.acquire("a")
    assert clock.now == 13.0


async def test_rate_limiter_hold_stops_every_use_of_the_key_for_the_time_given() -> None:
    clock = FakeClock()
    limiter = RateLimiter(20, 60.0, clock=clock, sleep=clock.sleep)
    await limiter.acquire("robot")
    clock.now = 5.0
    limiter.hold("robot", 60.0)  # WeCom answered 45009
    await limiter.acquire("robot")
    assert clock.now == 65.0
    await limiter.acquire("other-robot")
    assert clock.now == 65.0  # other keys are not held


async def test_a_45009_holds_the_robot_key_for_every_lane_using_it(wecom: WeComReceiver) -> None:
    wecom.window_s = 1.0
    settings = wecom.settings(KEY, retry_base_s=0.02, timeout_s=2.0, window_s=1.0)
    direct, relayed = url(settings), url(settings) + "&via=relay"  # two lanes, one robot key
    events: list[str] = []
    client = WeComClient(settings, trusted_webhooks=[direct, relayed], on_event=events.append)
    wecom.script("45009")
    try:
        first = asyncio.create_task(client.send(direct, "甲"))
        while "retried" not in events:  # until the client has read WeCom's 45009
            await asyncio.sleep(0.01)
        await asyncio.gather(first, client.send(relayed, "乙"))
    finally:
        await client.aclose()
    refused, *accepted = wecom.requests
    assert refused.errcode == 45009
    assert len(accepted) == 2
    assert all(r.arrived_at - refused.arrived_at >= 0.9 for r in accepted)  # both waited out the window


# ---- the block checker itself -----------------------------------------------------------


def block(title: str, proofread: int, summary: int = 0, kind: str = "校对", file: bool = False) -> list[str]:
    parts = [f"【{kind} {i}/{proofread}】{title}\nbody" for i in range(1, proofread + 1)]
    parts += [f"【总结 {i}/{summary}】{title}\nbody" for i in range(1, summary + 1)]
    return parts + ([f"[文件] {title}-{kind}.txt"] if file else [])


def test_checker_accepts_good_order() -> None:
    messages = ["【状态】已接收", *block("A", 3, 2), "【状态】完成", *block("B", 1, kind="转录"), *block("C", 2, 1)]
    messages += [*block("D", 0, 2, file=True), *block("E", 1, kind="转录", file=True)]
    counts = assert_contiguous_blocks(messages, ["A", "B", "C", "D", "E"])
    assert counts == {
        "A": {"校对": 3, "总结": 2},
        "B": {"转录": 1},
        "C": {"校对": 2, "总结": 1},
        "D": {"总结": 2, "文件": 1},
        "E": {"转录": 1, "文件": 1},
    }


@pytest.mark.parametrize(
    ("messages", "complaint"),
    [
        ([*block("A", 3)[:2], *block("B", 1), block("A", 3)[2]], r"message #2 .*interrupts.*校对 3/3 of 'A'"),
        ([*block("A", 2)[:1], "【状态】x", *block("A", 2)[1:]], r"message #1 .*status notice inside.*校对 1/2 of 'A'"),
        ([*block("A", 2, 1)[:2], "【状态】x", *block("A", 2, 1)[2:]], r"message #3 .*'A' already had its block"),
        ([*block("A", 3)[:2], block("A", 3)[1]], r"message #2 .*repeats a part of 'A'"),
        ([block("A", 3)[0], block("A", 3)[2]], r"message #1 .*skips parts of 'A'"),
        ([*block("A", 1), *block("B", 1), *block("A", 1)], r"message #2 .*'A' already had its block"),
        (block("A", 3)[:2], r"'A' ends early: 校对 parts 3..3"),
        (block("A", 2, 1)[2:], r"must start at 校对 1/n"),
        ([*block("A", 0, 2, file=True)[:2], *block("B", 1)], r"'A' starts at 总结 1/m, no file followed"),
        ([*block("A", 0, 2)[:1], block("A", 0, 2, file=True)[2]], r"message #1 .*file inside the block.*总结 1/2"),
        (["【状态】x", block("A", 0, 1, file=True)[1]], r"message #1 .*file outside any block"),
        ([*block("A", 0, 1, file=True), "[文件] again.txt"], r"message #2 .*a second file in the block of 'A'"),
        ([*block("A", 1, file=True), *block("A", 0, 1)], r"message #2 .*'A' already had its block"),
        (["hello"], r"message #0 .*neither"),
    ],
)
def test_checker_names_the_break(messages: list[str], complaint: str) -> None:
    with pytest.raises(BlockOrderError, match=complaint):
        assert_contiguous_blocks(messages)


def test_checker_expected_titles() -> None:
    with pytest.raises(BlockOrderError, match=r"missing for \['B'\], unexpected blocks for \['C'\]"):
        assert_contiguous_blocks([*block("A", 1), *block("C", 1)], ["A", "B"])


async def test_receiver_answers_like_wecom(wecom: WeComReceiver) -> None:
    """Bad JSON, empty content and over-limit requests get WeCom's errcodes over HTTP 200."""
    wecom.limit, wecom.window_s = 3, 60.0
    target = wecom.webhook_url("k-000000000000")
    async with httpx.AsyncClient() as http:
        answers: list[Any] = []
        for body in (b"{not json", b'{"msgtype": "text", "text": {"content": ""}}', b'{"msgtype": "image"}'):
            response = await http.post(target, content=body)
            answers.append((response.status_code, response.json()["errcode"]))
        answers.append((await http.post(target, json={"msgtype": "text", "text": {"content": "x"}})).json()["errcode"])
    assert answers == [(200, 40008), (200, 44004), (200, 40008), 45009]  # 3 earlier requests counted
    assert not wecom.messages()
