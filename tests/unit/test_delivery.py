"""A video's content block as the group will get it: which messages, in which order (no network)."""

from __future__ import annotations

import pytest

from actors.delivery.blocks import FILE_MSGTYPE, Attachment, attachment_name, content_parts
from actors.delivery.render import BlockKind
from actors.domain.task import TaskRecord
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo

LINK = "https://vidscribe.example/view/t1"
TEXT = "这是一句校对过的话。" * 2000  # 20,000 characters, 60 KB: 15 markdown messages


def task_with(text: str, title: str = "标题") -> TaskRecord:
    url = "https://videos.example/1"
    video = VideoInfo(url=url, platform="example", video_id="1", title=title, duration=60)
    transcript = Transcript(segments=[Segment(start=0, end=60, text=text)], language="zh", source=TranscriptSource.ASR)
    return TaskRecord(task_id="t1", url=url, video=video, transcript=transcript)


def headers(parts: list[tuple[str, str]]) -> list[str]:
    return [content.split("\n", 1)[0] for content, _ in parts]


def test_up_to_the_threshold_every_part_is_a_message() -> None:
    flood = content_parts(task_with(TEXT), TEXT, "- 要点", "markdown", LINK)
    proofread = sum(header.startswith("【校对 ") for header in headers(flood))
    assert proofread == 15
    assert content_parts(task_with(TEXT), TEXT, "- 要点", "markdown", LINK, attach_after=proofread) == flood


def test_over_the_threshold_the_summary_then_one_file() -> None:
    parts = content_parts(task_with(TEXT), TEXT, "- 要点", "markdown", LINK, attach_after=14)
    *messages, (content, msgtype) = parts
    assert msgtype == FILE_MSGTYPE
    assert Attachment.model_validate_json(content) == Attachment(filename="标题-校对.txt", text=TEXT)
    assert headers(messages) == ["【总结 1/1】标题"]
    assert messages[0][0] == f"【总结 1/1】标题\n• 要点\n\n全文共 20000 字，见附件 标题-校对.txt\n\n[查看全文]({LINK})"


@pytest.mark.parametrize(("proofread", "kind"), [(TEXT, "校对"), (None, "转录")])
def test_without_summary_a_note_then_the_file(proofread: str | None, kind: str) -> None:
    parts = content_parts(task_with(TEXT), proofread, None, "text", LINK, attach_after=6)
    assert parts == [
        (f"【{kind} 1/1】标题\n全文共 20000 字，见附件 标题-{kind}.txt\n\n查看全文：{LINK}", "text"),
        (Attachment(filename=f"标题-{kind}.txt", text=TEXT).model_dump_json(), FILE_MSGTYPE),
    ]


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("第1集：我们/来聊 AI?", "第1集_我们_来聊_AI-校对.txt"),
        ("../../etc/passwd", "etc_passwd-校对.txt"),
        ("..", "video-校对.txt"),
        ("换\n行\x00", "换_行-校对.txt"),
        ("长" * 500, "长" * 60 + "-校对.txt"),
    ],
)
def test_attachment_name_is_safe_and_bounded(title: str, name: str) -> None:
    assert attachment_name(title, BlockKind.PROOFREAD) == name
