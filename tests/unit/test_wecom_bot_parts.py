"""The smart robot's pure parts: frames, links in share texts, answers (no network)."""

from __future__ import annotations

import json

import pytest

from actors.delivery.bot import frames
from actors.delivery.bot.frames import ChatMessage, Frame
from actors.delivery.bot.intake import LinkOutcome, answer_text
from actors.delivery.bot.links import extract_links, strip_mention
from actors.delivery.bot.sender import chat_lane, chat_of
from actors.delivery.bot.settings import WeComBotSettings


@pytest.mark.parametrize(
    ("text", "links"),
    [
        # Bilibili's and Douyin's share texts: a title, words, a short link
        ("【这个视频讲得好-哔哩哔哩】 https://b23.tv/AbCdEf1", ["https://b23.tv/AbCdEf1"]),
        (
            "7.43 复制打开抖音，看看【某某的作品】今天的视频 https://v.douyin.com/iRNBho6u/ abc:/ 01/12 Jip:/",
            ["https://v.douyin.com/iRNBho6u/"],
        ),
        ("两个：https://youtu.be/x1，和https://www.bilibili.com/video/BV1xx411c7mD。", None),
        ("看看（https://example.com/v?a=1&b=2）吧", ["https://example.com/v?a=1&b=2"]),
        ("重复 https://a.example/1 https://a.example/1", ["https://a.example/1"]),
        ("no link here, ftp://x.example/1 neither", []),
        ("HTTPS://UPPER.example/V.", ["HTTPS://UPPER.example/V"]),
    ],
)
def test_links_in_share_texts(text: str, links: list[str] | None) -> None:
    expected = links if links is not None else ["https://youtu.be/x1", "https://www.bilibili.com/video/BV1xx411c7mD"]
    assert extract_links(text) == expected


def test_mention_is_stripped_and_links_are_bounded() -> None:
    assert strip_mention("@vidscribe  你好") == "你好"
    assert strip_mention("你好 @vidscribe") == "你好 @vidscribe"
    assert len(extract_links(" ".join(f"https://x.example/{n}" for n in range(30)))) == 10


def test_callback_frame_becomes_a_message() -> None:
    raw = json.dumps(
        {
            "cmd": "aibot_msg_callback",
            "headers": {"req_id": "r1"},
            "body": {
                "msgid": "m1",
                "chatid": "g1",
                "chattype": "group",
                "from": {"userid": "alice"},
                "msgtype": "mixed",
                "mixed": {"msg_item": [{"msgtype": "text", "text": {"content": "@bot 看"}}, {"msgtype": "image"}]},
                "quote": {"msgtype": "text", "text": {"content": "https://q.example/1"}},
            },
        }
    )
    message = ChatMessage.of(Frame.parse(raw))
    assert message == ChatMessage("r1", "m1", "g1", "group", "alice", "@bot 看\nhttps://q.example/1")
    single = Frame.parse(
        json.dumps({"cmd": "aibot_msg_callback", "headers": {"req_id": "r2"}, "body": {"from": {"userid": "bob"}}})
    )
    assert (ChatMessage.of(single).chatid, ChatMessage.of(single).chattype) == ("bob", "single")


def test_answer_frames_and_events() -> None:
    ack = Frame.parse('{"headers": {"req_id": "ping_1"}, "errcode": 40001, "errmsg": "invalid secret"}')
    assert (ack.cmd, ack.req_id, ack.errcode) == ("", "ping_1", 40001)
    body = {"event": {"eventtype": "disconnected_event"}}
    event = Frame.parse(json.dumps({"cmd": "aibot_event_callback", "headers": {"req_id": "e"}, "body": body}))
    assert event.event_type == frames.DISCONNECTED_EVENT
    with pytest.raises(ValueError, match="JSON object"):
        Frame.parse("[1]")
    sent = json.loads(frames.encode(frames.SEND, "r", {"chatid": "g", **frames.markdown_body("**x**")}))
    assert sent == {
        "cmd": "aibot_send_msg",
        "headers": {"req_id": "r"},
        "body": {"chatid": "g", "msgtype": "markdown", "markdown": {"content": "**x**"}},
    }
    assert frames.new_req_id("ping").startswith("ping_")


def test_answer_lists_each_link_and_keeps_their_text_inert() -> None:
    text = answer_text(
        [
            LinkOutcome(url="https://a.example/1", task_id="t1", view_url="https://vs.example/view/t1"),
            LinkOutcome(
                url="https://b.example/[x](y)", task_id="t2", view_url="https://vs.example/view/t2", existing=True
            ),
            LinkOutcome(url="http://127.0.0.1/", code="forbidden_url", message="private"),
            LinkOutcome(url="https://c.example/", code="queue_full", message="full"),
        ]
    )
    lines = text.split("\n")
    assert lines[0] == "已接收 2 个链接，完成后发到这里："
    assert lines[1] == "- https://a.example/1 [查看进度](https://vs.example/view/t1)"
    assert "](y)" not in lines[2] and "（已在处理中）" in lines[2]
    assert lines[3] == "- 未接收 http://127.0.0.1/：不允许的地址"
    assert lines[4] == "- 未接收 https://c.example/：排队的任务太多，请稍后再发"


def test_an_answer_stays_small_whatever_the_links() -> None:
    outcomes = [LinkOutcome(url="https://x.example/" + "长" * 2000, code="other", message="原因" * 500)] * 10
    outcomes += [LinkOutcome(url="https://y.example/" + "%E9" * 700, task_id="t", view_url="https://vs.example/view/t")]
    text = answer_text(outcomes)
    assert len(text.encode()) < 4096
    lines = text.split("\n")
    assert lines[1] == "- 未接收 https://x.example/" + "长" * 61 + "…：" + "原因" * 29 + "原…"
    assert lines[-1].startswith("……另有 ") and lines[-1].endswith(" 个链接未列出")


def test_chat_lanes_and_settings() -> None:
    assert chat_of(chat_lane("wrkSFfCgAA")) == "wrkSFfCgAA"
    assert chat_of("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k") is None
    assert not WeComBotSettings().enabled
    assert not WeComBotSettings(bot_id="b", secret="").enabled
    settings = WeComBotSettings(bot_id="b", secret="s", allowed_chats="g1, g2", allowed_users="")  # type: ignore[arg-type]
    assert settings.enabled and settings.allowed_chats == ["g1", "g2"] and settings.allowed_users == []
