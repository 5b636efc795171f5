"""Text from outside renders as words, never as WeCom markup; summaries in each type's markup."""

from __future__ import annotations

import pytest

from actors.delivery.blocks import content_parts, status_parts
from actors.delivery.markup import JOINER, inert, summary_markup
from actors.domain.task import TaskOptions, TaskRecord, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from tests.support.wecom_receiver import Message

HOSTILE_TITLE = '**免费领取** [点我](https://evil.example) <@zhangsan> <font color="warning">红</font>'
HOSTILE_TRANSCRIPT = "# 标题\n> 引用\n<@all> 大家好 ![图](https://evil.example/x.png)\n```\ncode\n```"
VIEW = "https://vidscribe.example/view/abc"
MSGTYPES = ("markdown", "markdown_v2", "text")


def live(content: str, msgtype: str) -> list[tuple[str, str]]:
    return Message("k", msgtype, content, 0.0).live_markup()


def task_with(title: str, text: str) -> TaskRecord:
    video = VideoInfo(url="https://v.example/1", platform="example", video_id="1", title=title, duration=60)
    transcript = Transcript(segments=[Segment(start=0, end=60, text=text)], language="zh", source=TranscriptSource.ASR)
    return TaskRecord(
        task_id="t1",
        url=video.url,
        options=TaskOptions(),
        status=TaskStatus.PROOFREADING,
        video=video,
        transcript=transcript,
        created_at=0,
        updated_at=0,
    )


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_inert_text_shows_the_same_characters_and_renders_nothing(msgtype: str) -> None:
    for hostile in (HOSTILE_TITLE, HOSTILE_TRANSCRIPT):
        made_inert = inert(hostile)

        assert made_inert.replace(JOINER, "") == hostile
        assert live(made_inert, msgtype) == []


def test_the_hostile_title_is_live_markup_before_it_is_made_inert() -> None:
    # The receiver's check sees what the issue describes: a link, a mention and a colour.
    kinds = {kind for kind, _ in live(HOSTILE_TITLE, "markdown")}

    assert kinds == {"link", "mention", "html"}


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_a_content_block_keeps_only_the_services_own_link(msgtype: str) -> None:
    task = task_with(HOSTILE_TITLE, HOSTILE_TRANSCRIPT)
    summary = "## 要点\n- **第一**：见 [这里](https://evil.example)\n- 第二 <@lisi>"

    parts = content_parts(task, HOSTILE_TRANSCRIPT, summary, msgtype, VIEW)

    found = [construct for content, _ in parts for construct in live(content, msgtype)]
    own_link = [("link", f"[查看全文]({VIEW})")]
    summary_heading = [("block", "## ")]  # the summary's own markup, where the type renders it
    allowed = {"text": [], "markdown": own_link, "markdown_v2": summary_heading + own_link}[msgtype]
    assert sorted(found) == sorted(allowed)
    assert all(HOSTILE_TITLE in content.replace(JOINER, "") for content, _ in parts)


def test_status_notices_quote_titles_as_words() -> None:
    ((content, msgtype),) = status_parts(f"处理失败：{HOSTILE_TITLE}\n原因：x")

    assert msgtype == "text"
    assert live(content, "text") == []


SUMMARY = """## 要点

- **价格**下降了 20%
* 发布于 2024 年
  + 细节

| 指标 | 数值 |
| --- | ---: |
| 营收 | 10 亿 |

```
print("hi")
```
> 原话引用"""


def test_markdown_v2_keeps_lists_tables_and_code() -> None:
    shown = summary_markup(SUMMARY, "markdown_v2")

    assert "- **价格**下降了 20%" in shown
    assert "| 营收 | 10 亿 |" in shown
    assert '```\nprint("hi")\n```' in shown
    assert live(shown, "markdown_v2") == [("block", "## ")]  # its own heading, kept


def test_markdown_turns_lists_tables_and_headings_into_plain_lines() -> None:
    shown = summary_markup(SUMMARY, "markdown")

    assert shown.splitlines() == [
        "**要点**",
        "",
        "• **价格**下降了 20%",
        "• 发布于 2024 年",
        "  • 细节",
        "",
        "指标 · 数值",
        "营收 · 10 亿",
        "",
        'print("hi")',
        "原话引用",
    ]


def test_text_drops_the_markup_characters() -> None:
    shown = summary_markup(SUMMARY, "text")

    assert "要点" in shown.splitlines()
    assert "• 价格下降了 20%" in shown
    assert "**" not in shown and "|" not in shown and "```" not in shown
