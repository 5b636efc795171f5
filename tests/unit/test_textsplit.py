"""Splitting long text into WeCom-sized, labelled parts: properties that must always hold."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.delivery.render import MAX_BYTES, BlockKind, clean_title, render_parts, render_status, strip_header
from actors.util.textsplit import pack, split_paragraphs, split_sentences, utf8_len

# Pieces a transcript is made of: CJK (3 bytes), ASCII, emoji (4 bytes), punctuation of
# both kinds, single and blank-line breaks.
FRAGMENTS = [
    "今天",
    "我们来聊一聊视频转录",
    "。",
    "！",
    "？",
    "，",
    "hello world",
    "Mr. Smith said",
    ". ",
    "? ",
    "3.14",
    "😀",
    "👨‍👩‍👧",
    " ",
    "\n",
    "\n\n",
    "「引号」",
    "…",
    "# 标题",
    "**粗体**",
]
texts = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(st.characters(codec="utf-8"), max_size=8),  # any encodable character
    ),
    max_size=300,
).map("".join)
# Long texts, so that part counts reach two digits: a chunk repeated many times.
long_texts = st.tuples(texts, st.integers(1, 400)).map(lambda pair: pair[0] * pair[1])
titles = st.one_of(
    st.sampled_from(["视频", "A talk about ASR", "", "多行\n标题\r\n第三行", "【校对 1/2】伪装"]),
    st.text(st.characters(codec="utf-8"), max_size=400),
)
HEADER = re.compile(r"【(校对|总结|转录) (\d+)/(\d+)】([^\n]*)")


def boundaries(pieces: list[str]) -> list[int]:
    """Character offsets where one piece ends and the next begins."""
    offsets, position = [], 0
    for piece in pieces[:-1]:
        position += len(piece)
        offsets.append(position)
    return offsets


def spans(units: list[str]) -> list[tuple[int, int, str]]:
    result, start = [], 0
    for unit in units:
        result.append((start, start + len(unit), unit))
        start += len(unit)
    return result


@settings(max_examples=300, deadline=None)
@given(text=texts, limit=st.integers(4, 200), bytes_measure=st.booleans())
def test_pack_fits_and_round_trips(text: str, limit: int, bytes_measure: bool) -> None:
    measure = utf8_len if bytes_measure else len
    pieces = pack(text, limit, measure)
    assert "".join(pieces) == text
    assert all(piece for piece in pieces)
    assert all(measure(piece) <= limit for piece in pieces)
    for piece in pieces:
        assert piece.encode("utf-8").decode("utf-8") == piece  # whole code points only


@settings(max_examples=300, deadline=None)
@given(text=texts, limit=st.integers(4, 200))
def test_pack_cuts_at_the_largest_boundary_that_fits(text: str, limit: int) -> None:
    """A cut inside a paragraph means the paragraph was too big; inside a sentence, the sentence."""
    pieces = pack(text, limit, utf8_len)
    paragraphs = spans(split_paragraphs(text))
    for cut in boundaries(pieces):
        for start, end, paragraph in paragraphs:
            if start < cut < end:
                assert utf8_len(paragraph) > limit, f"cut at {cut} inside a paragraph that fits: {paragraph!r}"
                for s_start, s_end, sentence in spans(split_sentences(paragraph)):
                    if start + s_start < cut < start + s_end:
                        assert utf8_len(sentence) > limit, f"cut inside a sentence that fits: {sentence!r}"


def test_pack_prefers_sentences_when_a_paragraph_is_too_large() -> None:
    sentences = ["第一句话说的是转录。", "第二句话说的是校对！", "第三句问总结在哪里？", "最后一句。"]
    paragraph = "".join(sentences)
    limit = utf8_len(sentences[0] + sentences[1]) + 5  # two sentences fit, the paragraph does not
    pieces = pack(paragraph + "\n\n下一段不长，但放不进去了。", limit, utf8_len)
    assert pieces == [sentences[0] + sentences[1], sentences[2] + sentences[3] + "\n\n", "下一段不长，但放不进去了。"]


def test_pack_keeps_paragraphs_whole_when_they_fit() -> None:
    paragraphs = ["第一段。第一段还有一句。\n\n", "第二段。\n\n", "第三段，稍微长一点点。"]
    limit = utf8_len(paragraphs[0]) + 3
    assert pack("".join(paragraphs), limit, utf8_len) == [paragraphs[0], paragraphs[1], paragraphs[2]]


def test_pack_rejects_a_limit_too_small_for_a_character() -> None:
    with pytest.raises(ValueError, match="too small"):
        pack("😀", 3, utf8_len)


def check_parts(parts: list[str], kind: BlockKind, title: str, text: str, msgtype: str) -> None:
    """What a group member relies on: every part fits, is labelled i/n and the bodies rebuild the text."""
    assert "".join(strip_header(part) for part in parts) == text
    assert bool(parts) == (text != "")
    for number, part in enumerate(parts, start=1):
        assert utf8_len(part) <= MAX_BYTES[msgtype], f"part {number} is {utf8_len(part)} bytes"
        part.encode("utf-8").decode("utf-8")
        header_line = part.split("\n", 1)[0]
        match = HEADER.fullmatch(header_line)
        assert match is not None, header_line
        assert (match[1], int(match[2]), int(match[3])) == (str(kind), number, len(parts))
        assert match[4] == clean_title(title)
        assert "\n" in part  # the header line always ends before the body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    text=long_texts, title=titles, kind=st.sampled_from(list(BlockKind)), msgtype=st.sampled_from(["markdown", "text"])
)
def test_render_parts_properties(text: str, title: str, kind: BlockKind, msgtype: str) -> None:
    check_parts(render_parts(kind, title, text, msgtype), kind, title, text, msgtype)


@pytest.mark.parametrize("msgtype", ["markdown", "text"])
def test_render_parts_at_the_one_to_two_digit_switch(msgtype: str) -> None:
    """Part counts around 9/10 and 99/100: the wider header must still fit."""
    title = "标" * 200  # long enough that the header takes a real share of the part
    seen = set()
    for count in (9, 99):
        widest = "9" * len(str(count))
        per_part = MAX_BYTES[msgtype] - utf8_len(f"【总结 {widest}/{widest}】{clean_title(title)}\n")
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


def test_render_parts_empty_text_gives_no_parts() -> None:
    assert render_parts(BlockKind.SUMMARY, "t", "", "markdown") == []


def test_render_parts_short_text_is_one_part() -> None:
    assert render_parts(BlockKind.TRANSCRIPT, "访谈", "你好。\n世界。", "markdown") == [
        "【转录 1/1】访谈\n你好。\n世界。"
    ]


@given(text=st.text(st.characters(codec="utf-8"), max_size=3000))
@settings(deadline=None)
def test_render_status_fits_a_text_message(text: str) -> None:
    status = render_status(text)
    assert status.startswith("【状态】")
    assert utf8_len(status) <= MAX_BYTES["text"]
    assert status == "【状态】" + text or (status.endswith("…") and text.startswith(status[4:-1]))
