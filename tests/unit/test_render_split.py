"""Long text as WeCom parts: each within WeCom's byte limit less a margin, labelled
`【校对 i/n】title`, cut where people see a break, bold runs reopened across parts."""

from __future__ import annotations

import re
from itertools import accumulate

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.delivery.render import (
    BOLD_MARK,
    MAX_BYTES,
    RENDERS_BOLD,
    SAFETY_MARGIN_BYTES,
    BlockKind,
    clean_title,
    part_budget,
    render_parts,
    render_status,
    strip_header,
)
from actors.util.textsplit import Kind, constructs, utf8_len
from tests.unit.test_textsplit import YOUTUBE, assert_seen_whole, graphemes, texts, visual_texts

MSGTYPES = ["markdown", "markdown_v2", "text"]
# Long texts, so that part counts reach two digits: a chunk repeated many times.
long_texts = st.tuples(texts, st.integers(1, 400)).map(lambda pair: pair[0] * pair[1])
titles = st.one_of(
    st.sampled_from(["视频", "A talk about ASR", "", "多行\n标题\r\n第三行", "【校对 1/2】伪装"]),
    st.text(st.characters(codec="utf-8"), max_size=400),
)
HEADER = re.compile(r"【(校对|总结|转录) (\d+)/(\d+)】([^\n]*)")
# Bold runs longer than a part: prose with clause, sentence and word breaks inside.
LONG_BOLD = st.builds(
    lambda words, count: f"{BOLD_MARK}{words * count}{BOLD_MARK}",
    st.sampled_from(["重点内容，很长。", "Important point, and more. ", "不要切开👨‍👩‍👧‍👦🇨🇳 ", "e\u0301"]),
    st.integers(100, 1500),
)


def unmark(bodies: list[str], text: str) -> list[str]:
    """The bodies less the `**` that render_parts adds to close a bold run at the end of a
    part (before trailing whitespace) and reopen it at the start of the next."""
    result, offset, reopened = [], 0, False
    for body in bodies:
        if reopened:
            assert re.match(r"\s*\*\*", body), body[:40]
            body = re.sub(r"\A(\s*)\*\*", r"\1", body)
        reopened = not text.startswith(body, offset)
        if reopened:
            assert re.search(r"\*\*\s*\Z", body), body[-40:]
            body = re.sub(r"\*\*(\s*)\Z", r"\1", body)
        result.append(body)
        offset += len(body)
    return result


def check_parts(parts: list[str], kind: BlockKind, title: str, text: str, msgtype: str) -> list[int]:
    """What a group member relies on: every part fits, is labelled i/n and the bodies rebuild
    the text. Returns where the parts cut `text`."""
    bodies = [strip_header(part) for part in parts]
    slices = unmark(bodies, text)
    assert "".join(slices) == text
    if msgtype not in RENDERS_BOLD:
        assert bodies == slices  # nothing added where `**` would show
    assert bool(parts) == (text != "")
    for number, part in enumerate(parts, start=1):
        assert utf8_len(part) <= MAX_BYTES[msgtype] - SAFETY_MARGIN_BYTES, f"part {number}: {utf8_len(part)} bytes"
        part.encode("utf-8").decode("utf-8")
        header_line = part.split("\n", 1)[0]
        match = HEADER.fullmatch(header_line)
        assert match is not None, header_line
        assert (match[1], int(match[2]), int(match[3])) == (str(kind), number, len(parts))
        assert match[4] == clean_title(title)
        assert "\n" in part  # the header line always ends before the body
    return list(accumulate(map(len, slices[:-1])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=long_texts, title=titles, kind=st.sampled_from(list(BlockKind)), msgtype=st.sampled_from(MSGTYPES))
def test_render_parts_properties(text: str, title: str, kind: BlockKind, msgtype: str) -> None:
    check_parts(render_parts(kind, title, text, msgtype), kind, title, text, msgtype)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    sample=visual_texts(max_size=200),
    repeat=st.integers(1, 30),
    bold=st.one_of(st.none(), LONG_BOLD),
    msgtype=st.sampled_from(MSGTYPES),
)
def test_render_parts_cut_only_where_people_see_a_break(
    sample: tuple[str, list[tuple[int, int]]], repeat: int, bold: str | None, msgtype: str
) -> None:
    chunk, chunk_spans = sample
    text = chunk * repeat
    protected = [(start + n * len(chunk), end + n * len(chunk)) for n in range(repeat) for start, end in chunk_spans]
    if bold is not None:
        text = f"{text}。{bold}。{text}"
    parts = render_parts(BlockKind.SUMMARY, "视频", text, msgtype)
    cuts = check_parts(parts, BlockKind.SUMMARY, "视频", text, msgtype)
    widest = "9" * len(str(len(parts)))  # render_parts reserves the widest header
    body_budget = part_budget(text, msgtype) - utf8_len(f"【总结 {widest}/{widest}】视频\n")
    assert_seen_whole(text, cuts, protected, lambda span: utf8_len(span) <= body_budget)


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_render_parts_at_the_one_to_two_digit_switch(msgtype: str) -> None:
    """Part counts around 9/10 and 99/100: the wider header must still fit."""
    title = "标" * 200  # long enough that the header takes a real share of the part
    seen = set()
    for count in (9, 99):
        widest = "9" * len(str(count))
        per_part = part_budget("a", msgtype) - utf8_len(f"【总结 {widest}/{widest}】{clean_title(title)}\n")
        for extra in (0, 1, per_part // 2):  # n full parts; one byte more needs a wider n
            text = "a" * (per_part * count + extra)
            parts = render_parts(BlockKind.SUMMARY, title, text, msgtype)
            check_parts(parts, BlockKind.SUMMARY, title, text, msgtype)
            seen.add(len(parts))
    assert {9, 10, 99, 100} <= seen


def test_render_parts_long_title_is_truncated_and_single_line() -> None:
    title = "很长的标题\n第二行" * 200
    parts = render_parts(BlockKind.PROOFREAD, title, "正文。" * 3000, "text")
    header = parts[0].split("\n", 1)[0]
    assert header.endswith("…") and "第二行" in header
    assert utf8_len(header) < 300
    check_parts(parts, BlockKind.PROOFREAD, title, "正文。" * 3000, "text")


def test_a_long_title_is_cut_between_grapheme_clusters() -> None:
    title = "👨‍👩‍👧‍👦" * 20  # 500 bytes; TITLE_MAX_BYTES falls inside the tenth family
    shown = clean_title(title)
    assert shown.endswith("…") and shown[:-1] == "👨‍👩‍👧‍👦" * (len(shown[:-1]) // len("👨‍👩‍👧‍👦"))


def test_render_parts_empty_text_gives_no_parts() -> None:
    assert render_parts(BlockKind.SUMMARY, "t", "", "markdown") == []


def test_render_parts_short_text_is_one_part() -> None:
    assert render_parts(BlockKind.TRANSCRIPT, "访谈", "你好。\n世界。", "markdown") == [
        "【转录 1/1】访谈\n你好。\n世界。"
    ]


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_parts_keep_a_safety_margin_under_the_limit(msgtype: str) -> None:
    text = "字" * 20_000
    parts = render_parts(BlockKind.PROOFREAD, "视频", text, msgtype)
    check_parts(parts, BlockKind.PROOFREAD, "视频", text, msgtype)
    assert max(utf8_len(part) for part in parts) > MAX_BYTES[msgtype] - SAFETY_MARGIN_BYTES - 16  # parts are full


@pytest.mark.parametrize("msgtype", MSGTYPES)
def test_the_youtube_link_arrives_whole(msgtype: str) -> None:
    """`[原视频](…watch?v=…)` was cut at its `?` (taken for a sentence end) into two messages."""
    link = f"[原视频]({YOUTUBE})"
    for filler in range(0, MAX_BYTES[msgtype], 97):  # the link at every position in a part
        text = "这是一段很长的介绍" * (filler // 27) + "x" * (filler % 27) + link + "。后面还有一句。" * 300
        parts = render_parts(BlockKind.PROOFREAD, "视频", text, msgtype)
        check_parts(parts, BlockKind.PROOFREAD, "视频", text, msgtype)
        assert [part for part in parts if link in part], filler


def test_emoji_and_flags_arrive_whole_in_every_message() -> None:
    text = "全家福👨‍👩‍👧‍👦，国旗🇨🇳🇺🇸，点赞👍🏽，咖啡café。" * 400
    parts = render_parts(BlockKind.TRANSCRIPT, "视频", text, "text")
    check_parts(parts, BlockKind.TRANSCRIPT, "视频", text, "text")
    assert len(parts) > 3
    assert [cluster for part in parts for cluster in graphemes(strip_header(part))] == graphemes(text)


@pytest.mark.parametrize("msgtype", sorted(RENDERS_BOLD))
def test_a_bold_run_longer_than_a_part_is_closed_and_reopened(msgtype: str) -> None:
    bold = BOLD_MARK + "这一句是重点，必须加粗。" * 600 + BOLD_MARK  # ~21 KB of bold
    text = f"开头。{bold}结尾。"
    parts = render_parts(BlockKind.SUMMARY, "视频", text, msgtype)
    bodies = [strip_header(part) for part in parts]
    assert len(bodies) > 4
    for body in bodies:  # every message shows its bold text as bold: markers pair up
        assert body.count(BOLD_MARK) == 2, body[:60]
    assert bodies[0].startswith("开头。**") and bodies[0].endswith("。**")
    assert all(body.startswith("**") for body in bodies[1:])
    assert bodies[-1].endswith("**结尾。")
    # The added markers are the only difference: without them the parts are the text.
    assert bodies[0][:-2] + "".join(body[2:-2] for body in bodies[1:-1]) + bodies[-1][2:] == text
    assert "".join(unmark(bodies, text)) == text


def test_bold_markers_go_inside_the_whitespace_at_a_cut() -> None:
    bold = BOLD_MARK + "This is important. " * 400 + BOLD_MARK
    parts = render_parts(BlockKind.SUMMARY, "video", bold, "markdown")
    bodies = [strip_header(part) for part in parts]
    assert len(bodies) > 1
    assert all(body.endswith(".** ") for body in bodies[:-1])  # `**x. **` would not render bold
    assert all(body.startswith("**This") for body in bodies)
    assert "".join(unmark(bodies, bold)) == bold


def test_a_bold_run_is_not_reopened_in_text_messages() -> None:
    bold = BOLD_MARK + "重点。" * 2000 + BOLD_MARK
    parts = render_parts(BlockKind.SUMMARY, "视频", bold, "text")
    assert "".join(strip_header(part) for part in parts) == bold


def test_a_bold_run_that_fits_is_kept_in_one_part() -> None:
    bold = BOLD_MARK + "这一句是重点，必须加粗。" * 100 + BOLD_MARK  # ~3.6 KB: fits a markdown part
    text = "前文。" * 300 + bold + "后文。" * 300
    parts = render_parts(BlockKind.SUMMARY, "视频", text, "markdown")
    assert [part for part in parts if bold in part]
    assert [c.kind for c in constructs(text)] == [Kind.BOLD]


@given(text=st.text(st.characters(codec="utf-8"), max_size=3000))
@settings(deadline=None)
def test_render_status_fits_a_text_message(text: str) -> None:
    status = render_status(text)
    assert status.startswith("【状态】")
    assert utf8_len(status) <= MAX_BYTES["text"]
    assert status == "【状态】" + text or (status.endswith("…") and text.startswith(status[4:-1]))
