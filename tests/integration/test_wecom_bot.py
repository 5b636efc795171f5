"""The smart robot against the local stand-in of WeCom's long-connection server (TLS, own CA):
the real connection, the real submit path over a real SQLite Store, the real mailbox and fake
LLM. No Ray: the LLMSender is a thin shell around `Mailbox`; the test plays the Transcriber."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.delivery.bot.connection import BotConnection, BotState
from actors.delivery.bot.frames import ChatMessage
from actors.delivery.bot.sender import BotSender
from actors.delivery.bot.settings import WeComBotSettings
from actors.delivery.mailbox import Mailbox
from actors.domain.errors import DeliveryError, InvalidURL
from actors.domain.task import TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.cli import doctor
from serve_app.cli.doctor_bot import wecom_bot_verdict
from serve_app.http.app import create_app
from serve_app.http.schemas import SubmitOptions, SubmitRequest
from serve_app.http.submit import Submitter
from serve_app.settings import Settings
from tests.support.local_gateway import RecordingWorkQueue
from tests.support.wecom_bot_server import WeComBotServer
from tests.support.wecom_receiver import assert_contiguous_blocks

SENTENCE = "今天我们来聊一聊视频转录，这个系统会先下载音频，然后识别语音并校对文字。"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "vidscribe.db")
    yield db
    db.close()


def settings_for(tmp_path: Path, server: WeComBotServer, fake_llm: Any, **bot: Any) -> Settings:
    llm = fake_llm.settings(chunk_chars=1500, summary_min_chars=100)
    ca_file = server.write_ca(tmp_path / "ca.pem")
    return Settings(
        data_dir=tmp_path, public_url="https://vs.example", llm=llm, wecom_bot=server.settings(ca_file, **bot)
    )


async def until(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def running(settings: Settings, store: Store, online: WeComBotServer | None = None) -> AsyncIterator[Mailbox]:
    """The LLMSender's mailbox with the robot; with `online`, once that server has it subscribed."""
    client = LocalStoreClient(store)
    mailbox = Mailbox(settings, client, chat_submitter=Submitter(settings, client, RecordingWorkQueue()))
    mailbox.start()
    try:
        if online is not None:
            await until(online.online, what="subscribed")
        yield mailbox
    finally:
        await mailbox.close()


async def ask(server: WeComBotServer, text: str, **where: Any) -> str:
    """Post a member's message and wait for the robot's answer."""
    req_id = await asyncio.to_thread(server.post, text, **where)
    return await asyncio.to_thread(server.wait_answer, req_id)


def transcribe(store: Store, task_id: str, title: str, sentences: int) -> None:
    """What the Transcriber would have done."""
    task = store.get_task(task_id)
    assert task is not None
    video = VideoInfo(url=task.url, platform="example", video_id=task_id, title=title, duration=60)
    text = SENTENCE * sentences
    transcript = Transcript(segments=[Segment(start=0, end=60, text=text)], language="zh", source=TranscriptSource.ASR)
    store.update_task(task_id, video=video, transcript=transcript, source=transcript.source)
    store.update_task(task_id, status=TaskStatus.TRANSCRIBING)


async def wait_done(store: Store, task_id: str, timeout: float = 30) -> None:
    def done() -> bool:
        task = store.get_task(task_id)
        return task is not None and task.status.finished and not store.lanes_with_pending()

    await until(done, timeout, f"task {task_id} delivered")


def only_task(store: Store) -> str:
    tasks = store.unfinished_tasks()
    assert len(tasks) == 1, tasks
    return tasks[0].task_id


async def test_link_in_a_chat_is_answered_and_its_block_arrives_there(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm), store, server) as mailbox:
        started = time.monotonic()
        answer = await ask(server, "@vidscribe 【好视频-哔哩哔哩】 https://b23.tv/AbCd1 看看", chatid="group1")
        answered_s = time.monotonic() - started
        task_id = only_task(store)
        assert answer.startswith("已接收 1 个链接")
        assert f"[查看进度](https://vs.example/view/{task_id})" in answer
        task = store.get_task(task_id)
        assert task is not None and task.url == "https://b23.tv/AbCd1" and task.webhook == "wecom-bot:group1"

        transcribe(store, task_id, "好视频", 60)
        await mailbox.enqueue(task_id)
        await wait_done(store, task_id)
    counts = assert_contiguous_blocks(server.messages("group1"), expected_titles=["好视频"])
    assert counts["好视频"]["校对"] >= 2 and counts["好视频"]["总结"] >= 1
    assert all(len(m.encode()) <= 4096 for m in server.messages("group1"))
    assert server.messages("group1")[-1].endswith(f"[查看全文](https://vs.example/view/{task_id})")
    assert answered_s < 2, answered_s


async def test_help_refusals_and_a_repeated_callback(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm, allowed_chats="group1,alice", allowed_users="alice")
    async with running(settings, store, server):
        assert (await ask(server, "@vidscribe 你好")).startswith("发我一个视频链接")
        refused = await ask(server, f"@vidscribe http://127.0.0.1:8080/v https://x.example/{'a' * 3000}")
        assert refused.split("\n") == [
            "- 未接收 http://127.0.0.1:8080/v：不允许的地址",
            f"- 未接收 https://x.example/{'a' * 61}…：不是有效的链接",
        ]
        assert "没有开通" in await ask(server, "@vidscribe https://v.example/1", chatid="group2")
        assert "没有开通" in await ask(server, "@vidscribe https://v.example/1", userid="mallory")
        assert not store.unfinished_tasks()

        # one-to-one chat: the chat is the member
        assert (await ask(server, "https://v.example/1", chatid="alice")).startswith("已接收 1 个链接")
        assert only_task(store) and store.unfinished_tasks()[0].webhook == "wecom-bot:alice"

        # WeCom delivers a callback again: no second task, no second answer
        first = await asyncio.to_thread(server.post, "@vidscribe https://v.example/2", msgid="m-dup")
        await asyncio.to_thread(server.wait_answer, first)
        again = await asyncio.to_thread(server.post, "@vidscribe https://v.example/2", msgid="m-dup")
        await asyncio.sleep(0.5)
        assert not server.answers.get(again)
        assert len(store.unfinished_tasks()) == 2

        # the same link from another message while its task runs: that task, no new one
        assert "（已在处理中）" in await ask(server, "@vidscribe https://v.example/2")
        assert len(store.unfinished_tasks()) == 2
        # ... but another chat asking for it gets its own task, and its own block
        assert "（已在处理中）" not in await ask(server, "@vidscribe https://v.example/2", chatid="alice")
        assert {t.webhook for t in store.unfinished_tasks()} == {"wecom-bot:alice", "wecom-bot:group1"}
        assert len(store.unfinished_tasks()) == 3

        # a request cannot name a chat as its webhook: only the robot's messages reach chat lanes
        submitter = Submitter(settings, LocalStoreClient(store), RecordingWorkQueue())
        body = SubmitRequest(url="https://v.example/3", options=SubmitOptions(webhook_url="wecom-bot:group1"))
        with pytest.raises(InvalidURL):
            await submitter.submit(body, None)


async def test_a_chat_sending_too_many_links_is_told_to_wait(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm).model_copy(update={"rate_limit_per_minute": 2})
    async with running(settings, store, server):
        answer = await ask(server, "@vidscribe https://v.example/1 https://v.example/2 https://v.example/3")
        assert answer.split("\n")[0] == "已接收 2 个链接，完成后发到这里："
        assert answer.split("\n")[-1] == "- 未接收 https://v.example/3：这个会话一分钟内发的链接太多，请稍后再发"
        assert "已接收 1 个链接" in await ask(server, "@vidscribe https://v.example/4", chatid="group2")  # per chat


async def test_queue_full_is_said(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm).model_copy(update={"max_queued_tasks": 1})
    async with running(settings, store, server):
        answer = await ask(server, "@vidscribe https://v.example/1 https://v.example/2")
        assert answer.split("\n")[1:] == [
            f"- https://v.example/1 [查看进度](https://vs.example/view/{only_task(store)})",
            "- 未接收 https://v.example/2：排队的任务太多，请稍后再发",
        ]


async def test_wrong_secret_keeps_retrying_and_says_why(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = wecom_bot_server
    caplog.set_level(logging.DEBUG)
    settings = settings_for(tmp_path, server, fake_llm, secret="not-the-secret-XYZ", reconnect_max_s=0.5)
    async with running(settings, store) as mailbox:
        await until(lambda: len(server.subscribes) >= 3, what="three subscribe attempts")
        robot = mailbox.robot
        assert robot is not None and robot.connection.state in (BotState.OFFLINE, BotState.CONNECTING)
        assert not server.online()
    assert "subscribe refused: errcode 40001 (invalid secret)" in caplog.text
    assert "VIDSCRIBE_WECOM_BOT__SECRET" in caplog.text
    assert "not-the-secret-XYZ" not in caplog.text and server.bots["bot1"] not in caplog.text


@pytest.mark.parametrize("cut", ["abort", "close"])
async def test_connection_cut_mid_block_is_resumed_whole(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer, cut: str
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm), store, server) as mailbox:
        await ask(server, "@vidscribe https://v.example/long")
        task_id = only_task(store)
        server.cut_at_push = (3, cut)  # the third message of the block cuts the connection
        transcribe(store, task_id, "长视频", 120)
        await mailbox.enqueue(task_id)
        await wait_done(store, task_id)
    counts = assert_contiguous_blocks(server.messages("group1"), expected_titles=["长视频"])
    assert sum(counts["长视频"].values()) >= 4
    assert server.accepted_subscribes() == 2


async def test_unanswered_pings_reconnect(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm, ack_timeout_s=0.5), store, server):
        server.ack_pings = False
        await until(lambda: server.pings >= 2, what="two pings")
        server.ack_pings = True
        await until(lambda: server.accepted_subscribes() == 2, timeout=10, what="a new subscribe")
        assert (await ask(server, "@vidscribe 你好")).startswith("发我一个视频链接")


async def test_another_instance_taking_over_is_not_fought(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm, replaced_backoff_s=2), store, server) as mailbox:
        robot = mailbox.robot
        assert robot is not None
        await asyncio.to_thread(server.take_over)
        await until(lambda: robot.connection.state is BotState.REPLACED, what="replaced")
        await asyncio.sleep(1.0)
        assert server.accepted_subscribes() == 1  # backing off, not fighting
        await until(lambda: server.accepted_subscribes() == 2, timeout=5, what="back after the backoff")
    assert "another instance subscribed this robot" in caplog.text


async def test_health_details_show_the_connection(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm)
    async with running(settings, store) as mailbox:
        robot = mailbox.robot
        assert robot is not None

        async def status() -> dict[str, str] | None:
            return robot.status()

        app = create_app(settings, LocalStoreClient(store), RecordingWorkQueue(), robot_status=status)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test") as client:
            await until(server.online, what="subscribed")
            assert (await client.get("/healthz")).text == "ok"
            details = (await client.get("/healthz", params={"details": "true"})).json()
            assert details == {"store": "ok", "wecom_bot": {"state": "online", "reason": "subscribed"}}
            await asyncio.to_thread(server.drop)
            await until(lambda: robot.connection.state is not BotState.ONLINE, what="offline")
            details = (await client.get("/healthz", params={"details": "true"})).json()
            assert details["wecom_bot"]["state"] in ("offline", "connecting")
        plain = create_app(settings, LocalStoreClient(store), RecordingWorkQueue())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=plain), base_url="http://gw.test") as client:
            assert (await client.get("/healthz", params={"details": "true"})).json()["wecom_bot"] is None


def test_doctor_checks_reachability_without_subscribing(tmp_path: Path, wecom_bot_server: WeComBotServer) -> None:
    server = wecom_bot_server
    ca_file = server.write_ca(tmp_path / "ca.pem")
    here = "http://127.0.0.1:9"  # nothing listens: the service is not running
    assert wecom_bot_verdict(WeComBotSettings(), here)[0] == "ok"
    assert wecom_bot_verdict(WeComBotSettings(bot_id="bot1"), here)[0] == "FAIL"
    configured = WeComBotSettings(**server.settings(ca_file))
    status, detail, _ = wecom_bot_verdict(configured, here)
    assert (status, server.subscribes) == ("ok", [])  # a subscribe would take the robot from the service
    assert "reachable" in detail and "did not answer" in detail
    status, detail, _ = wecom_bot_verdict(configured.model_copy(update={"ca_file": None}), here)
    assert status == "FAIL" and "CERTIFICATE_VERIFY_FAILED" in detail  # its own CA is needed

    def running_service(state: str, reason: str) -> Callable[[str], Any]:
        return lambda url: {"store": "ok", "wecom_bot": {"state": state, "reason": reason}}

    online = wecom_bot_verdict(configured, here, running_service("online", "subscribed"))
    assert online[0] == "ok" and "connection is online" in online[1]
    refused = wecom_bot_verdict(configured, here, running_service("offline", "subscribe refused: errcode 40001"))
    assert refused[0] == "warn" and "offline: subscribe refused: errcode 40001" in refused[1]
    settings = Settings(data_dir=tmp_path, wecom_bot=server.settings(ca_file))
    assert server.bots["bot1"] in doctor.secrets_of(settings)  # scrubbed from whatever doctor prints


@pytest.mark.parametrize("client_rate", [3, 30])
async def test_a_chat_gets_at_most_its_rate(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer, client_rate: int
) -> None:
    """WeCom's limit is per chat (here 3 a second); kept by the client (3), or learnt from 45009 (30)."""
    server = wecom_bot_server
    server.limit, server.window_s = 3, 1.0
    settings = settings_for(tmp_path, server, fake_llm, rate_per_window=client_rate, window_s=1)
    async with running(settings, store, server) as mailbox:
        await ask(server, "@vidscribe https://v.example/many")
        task_id = only_task(store)
        transcribe(store, task_id, "多条", 120)
        await mailbox.enqueue(task_id)
        await wait_done(store, task_id)
    counts = assert_contiguous_blocks(server.messages("group1"), expected_titles=["多条"])
    assert sum(counts["多条"].values()) >= 5
    if client_rate == 3:
        assert server.refused == []  # paced by the client
    else:
        assert set(server.refused) == {45009}  # refused, waited a window, sent
    assert store.get_task(task_id).status is TaskStatus.DONE  # type: ignore[union-attr]


async def test_a_failed_task_is_told_in_its_chat(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm), store, server) as mailbox:
        await ask(server, "@vidscribe https://v.example/<@all>", chatid="group7")
        task_id = only_task(store)
        store.fail_task(task_id, "video_not_found", "HTTP 404 <@all> [x](http://evil.example)")
        await mailbox.notify_failed(task_id)
        await until(lambda: bool(server.messages("group7")), what="the notice")
    (notice,) = server.messages("group7")
    assert notice.startswith("【状态】处理失败") and "video_not_found" in notice
    assert "<@all>" not in notice and "](http" not in notice  # words, not a mention or a link


async def test_a_long_text_comes_as_the_summary_and_one_file(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm)
    settings.wecom.attach_after_messages = 2
    async with running(settings, store, server) as mailbox:
        await ask(server, "@vidscribe https://v.example/long-text")
        task_id = only_task(store)
        transcribe(store, task_id, "长文", 200)
        await mailbox.enqueue(task_id)
        await wait_done(store, task_id)
    messages = server.messages("group1")
    assert_contiguous_blocks(messages, expected_titles=["长文"])
    assert messages[0].startswith("【总结 1/1】长文") and messages[-1] == "[文件] 长文-校对.txt"
    ((filename, data),) = server.files.values()
    task = store.get_task(task_id)
    assert task is not None and filename == "长文-校对.txt" and data.decode() == task.proofread


async def test_a_large_file_goes_up_in_chunks(tmp_path: Path, wecom_bot_server: WeComBotServer) -> None:
    server = wecom_bot_server
    settings = WeComBotSettings(**server.settings(server.write_ca(tmp_path / "ca.pem")))

    async def ignore(message: ChatMessage) -> None:
        del message

    connection = BotConnection(settings, ignore)
    connection.start()
    try:
        await connection.wait_online(10)
        data = ("一二三四五六七八九十" * 45_000).encode()  # 1.35 MB: three chunks
        await BotSender(connection, settings).send_file("group1", "big.txt", data)
        with pytest.raises(DeliveryError, match="6 B to 20 MB"):
            await BotSender(connection, settings).send_file("group1", "tiny.txt", b"1234")
    finally:
        await connection.close()
    assert server.messages("group1") == ["[文件] big.txt"]
    assert list(server.files.values()) == [("big.txt", data)]


async def test_a_restart_mid_block_resumes_from_the_first_unsent_part(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm)
    server.hold_pushes_after = 2  # the block's third message hangs: the LLMSender dies waiting
    async with running(settings, store, server) as mailbox:
        await ask(server, "@vidscribe https://v.example/restart")
        task_id = only_task(store)
        transcribe(store, task_id, "重启", 120)
        await mailbox.enqueue(task_id)
        await until(lambda: len(server.messages("group1")) == 2, what="two messages out")
    server.hold_pushes_after = None
    async with running(settings, store):  # a new LLMSender: its recovery finds the unsent parts
        await wait_done(store, task_id)
    counts = assert_contiguous_blocks(server.messages("group1"), expected_titles=["重启"])
    assert sum(counts["重启"].values()) == len(server.messages("group1")) >= 4  # nothing twice, nothing lost
    assert server.accepted_subscribes() == 2


async def test_a_member_opening_a_chat_is_welcomed_with_the_help(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm), store, server):
        req_id = await asyncio.to_thread(server.enter, "bob")
        assert (await asyncio.to_thread(server.wait_answer, req_id)).startswith("发我一个视频链接")
        assert server.answers[req_id][0]["msgtype"] == "text"


async def test_a_missing_ca_file_is_retried_and_said_not_fatal(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm, reconnect_max_s=0.2)
    settings.wecom_bot.ca_file = tmp_path / "missing.pem"
    async with running(settings, store) as mailbox:
        robot = mailbox.robot
        assert robot is not None
        await until(lambda: "FileNotFoundError" in robot.connection.reason, what="the reason")
        await asyncio.sleep(0.5)
        assert robot.connection.state in (BotState.OFFLINE, BotState.CONNECTING) and not server.subscribes
    assert "WeCom smart robot offline: FileNotFoundError" in caplog.text


async def test_the_answer_shows_live_progress_until_the_block_goes_out(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    async with running(settings_for(tmp_path, server, fake_llm, progress_s=0.05), store, server) as mailbox:
        req_id = await asyncio.to_thread(server.post, "@vidscribe https://v.example/live")
        await asyncio.to_thread(server.wait_answer, req_id)
        task_id = only_task(store)
        await asyncio.sleep(0.2)
        store.update_task(task_id, status=TaskStatus.DOWNLOADING, progress=0.4)
        await until(lambda: "第 1 个：下载中 40%" in server.wait_answer(req_id), what="progress shown")
        assert not server.finished(req_id)
        transcribe(store, task_id, "进度", 20)
        await mailbox.enqueue(task_id)
        await wait_done(store, task_id)
        await until(lambda: server.finished(req_id), what="the answer finished")
    updates = [body["stream"] for body in server.answers[req_id]]
    assert len({u["id"] for u in updates}) == 1 and [u["finish"] for u in updates][-2:] == [False, True]
    assert updates[0]["content"].startswith("已接收 1 个链接")
    assert updates[-1]["content"].endswith("结果见下方。")
    assert assert_contiguous_blocks(server.messages("group1"), expected_titles=["进度"])


async def test_progress_ends_after_its_time_with_a_note(
    tmp_path: Path, store: Store, fake_llm: Any, wecom_bot_server: WeComBotServer
) -> None:
    server = wecom_bot_server
    settings = settings_for(tmp_path, server, fake_llm, progress_s=0.05, progress_max_s=0.3)
    async with running(settings, store, server):
        req_id = await asyncio.to_thread(server.post, "@vidscribe https://v.example/slow")
        await until(lambda: server.finished(req_id), what="the answer finished")
    final = server.answers[req_id][-1]["stream"]["content"]
    assert final.endswith("仍在处理，完成后发到这里。") and "第 1 个：排队中" in final
