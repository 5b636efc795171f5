"""Splitting text where a reader sees a break: properties that must always hold, and the
cuts that used to break what people see (emoji, flags, accents, links, markup)."""

from __future__ import annotations

from itertools import accumulate

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.util.textsplit import (
    Kind,
    Measure,
    constructs,
    pack,
    split_clauses,
    split_paragraphs,
    split_sentences,
    utf8_len,
)

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

# What people see as one character although it is several code points, and prose around it.
CLUSTERS = [
    "👨‍👩‍👧‍👦",  # family: four people joined by ZWJ
    "👩‍💻",
    "🏳️‍🌈",
    "👩🏽‍🤝‍👨🏿",  # skin tones inside a ZWJ sequence
    "👍🏻",
    "👋🏿",
    "🇨🇳",
    "🇺🇸",
    "🇯🇵",
    "🇨",  # a lone regional indicator: every later one pairs differently
    "e\u0301",
    "a\u0308\u0323",
    "\u0915\u094d\u0937",  # Devanagari conjunct
    "\u1100\u1161\u11a8",  # Hangul jamo
    "\r\n",
]
PROSE = ["今天", "视频转录", "hello", "world", "3.14", "1,000", "12:30"]
PUNCTUATION = ["。", "！", "？", "，", "、", "：", "；", ". ", "? ", "! ", ", ", ": ", "; ", "…", " ", "\n", "\n\n"]
filler = st.sampled_from(CLUSTERS + PROSE + PUNCTUATION)

# Constructs a cut must not open, each with where its protected spans lie inside it.
CONSTRUCTS: list[tuple[str, list[tuple[int, int]]]] = []


def construct(text: str, *inner: str) -> None:
    """Register `text` as a construct; `inner` names nested constructs (found by position)."""
    spans = [(0, len(text))] + [(text.index(part), text.index(part) + len(part)) for part in inner]
    CONSTRUCTS.append((text, spans))


YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s"
construct(YOUTUBE)
construct(f"[原视频]({YOUTUBE})", YOUTUBE)
construct("![截图](https://img.example/a.png?w=1;h=2)", "https://img.example/a.png?w=1;h=2")
construct("https://zh.wikipedia.org/wiki/中国?a=1!b=2")
construct("`cmd --flag=a.b; echo ok!`")
construct('<font color="info">绿色，也是字！</font>')
construct('<font color="warning">**警告。**</font>', "**警告。**")
construct("**重点：不要切开。真的！**")
construct(f"**看[原视频]({YOUTUBE})，别切**", f"[原视频]({YOUTUBE})", YOUTUBE)
construct("**Important point. Keep it whole!**")
# A URL keeps the brackets it opened; the one around it is not part of it.
CONSTRUCTS.append(("(https://x.y/a_(b))", [(1, len("(https://x.y/a_(b))") - 1)]))
SEPARATORS = [" ", "\n", "。", "，"]  # nothing a construct could run on into


@st.composite
def visual_texts(draw: st.DrawFn, max_size: int = 120) -> tuple[str, list[tuple[int, int]]]:
    """Text of clusters, prose and constructs at every offset, with the constructs' spans."""
    text, spans = "", []
    for _ in range(draw(st.integers(0, max_size))):
        if draw(st.integers(0, 4)):
            text += draw(filler)
            continue
        body, inner = draw(st.sampled_from(CONSTRUCTS))
        text += draw(st.sampled_from(SEPARATORS))
        spans += [(len(text) + start, len(text) + end) for start, end in inner]
        text += body + draw(st.sampled_from(SEPARATORS))
    return text, spans


def graphemes(text: str) -> list[str]:
    return regex.findall(r"\X", text)


def grapheme_boundaries(text: str) -> set[int]:
    return set(accumulate(map(len, graphemes(text)), initial=0))


def boundaries(pieces: list[str]) -> list[int]:
    """Character offsets where one piece ends and the next begins."""
    return list(accumulate(map(len, pieces[:-1])))


def spans(units: list[str]) -> list[tuple[int, int, str]]:
    result, start = [], 0
    for unit in units:
        result.append((start, start + len(unit), unit))
        start += len(unit)
    return result


def assert_seen_whole(text: str, cuts: list[int], protected: list[tuple[int, int]], fits: Measure) -> None:
    """No cut inside a grapheme cluster of the whole text, nor inside a construct that fits."""
    assert set(cuts) <= grapheme_boundaries(text), "a cut inside a grapheme cluster"
    for start, end in protected:
        if fits(text[start:end]):
            assert not [cut for cut in cuts if start < cut < end], f"cut inside {text[start:end]!r}"


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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=visual_texts(), limit=st.integers(30, 400), bytes_measure=st.booleans())
def test_pack_cuts_only_where_people_see_a_break(
    sample: tuple[str, list[tuple[int, int]]], limit: int, bytes_measure: bool
) -> None:
    text, protected = sample
    measure = utf8_len if bytes_measure else len
    pieces = pack(text, limit, measure)
    assert "".join(pieces) == text
    assert all(piece and measure(piece) <= limit for piece in pieces)
    # Each piece shows the same characters as that stretch of the whole text: no flag pairs
    # up differently after a cut, no accent loses its letter.
    assert [cluster for piece in pieces for cluster in graphemes(piece)] == graphemes(text)
    cuts = boundaries(pieces)
    assert_seen_whole(text, cuts, protected, lambda span: measure(span) <= limit)
    found_all = constructs(text)
    for found in found_all:  # a run too long is cut between its words, never in a marker
        nested = [c for c in found_all if found.start <= c.start and c.end <= found.end and c != found]
        if found.kind in (Kind.BOLD, Kind.FONT) and not nested:  # else a marker may be its only cut
            assert not [cut for cut in cuts if found.start < cut <= found.inner_start], text[found.start : found.end]
            assert not [cut for cut in cuts if found.inner_end <= cut < found.end], text[found.start : found.end]


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(texts, visual_texts().map(lambda sample: sample[0])), limit=st.integers(4, 200))
def test_pack_cuts_at_the_largest_boundary_that_fits(text: str, limit: int) -> None:
    """A cut inside a paragraph means the paragraph was too big; inside a sentence, the
    sentence; inside a clause, the clause."""
    cuts = boundaries(pack(text, limit, utf8_len))
    for start, end, paragraph in spans(split_paragraphs(text)):
        inside = [cut - start for cut in cuts if start < cut < end]
        if not inside:
            continue
        assert utf8_len(paragraph) > limit, f"cut inside a paragraph that fits: {paragraph!r}"
        for split in (split_sentences, split_clauses):
            for u_start, u_end, unit in spans(split(paragraph)):
                if any(u_start < cut < u_end for cut in inside):
                    assert utf8_len(unit) > limit, f"cut inside a {split.__name__[6:-1]} that fits: {unit!r}"


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


def test_pack_prefers_clauses_when_a_sentence_is_too_large() -> None:
    sentence = "这一句很长，中间有逗号、顿号，还有冒号：最后才结束。"
    pieces = pack(sentence, utf8_len("这一句很长，中间有逗号、") + 2, utf8_len)
    assert pieces == ["这一句很长，中间有逗号、", "顿号，还有冒号：", "最后才结束。"]


def test_pack_rejects_a_limit_too_small_for_a_character() -> None:
    with pytest.raises(ValueError, match="too small"):
        pack("😀", 3, utf8_len)


def test_a_family_emoji_is_never_split() -> None:
    family = "👨‍👩‍👧‍👦"  # 25 bytes: man ZWJ woman ZWJ girl ZWJ boy
    text = "全家福" + family + "合影"
    pieces = pack(text, 30, utf8_len)  # cut by code points: 全家福👨‍👩‍👧‍ | 👦合影
    assert pieces == ["全家福", family + "合", "影"]


def test_flags_stay_pairs_and_later_flags_pair_up_as_in_the_text() -> None:
    flags = ["🇨🇳", "🇺🇸", "🇯🇵"]
    # Cut by code points, 国🇨 | 🇳🇺 | 🇸🇯 | 🇵: one flag split, every later one paired wrongly.
    assert pack("国" + "".join(flags), 9, utf8_len) == ["国", *flags]
    lone = "🇨" + "".join(flags)  # a lone regional indicator pairs with the next one, as shown
    pieces = pack(lone, 9, utf8_len)
    assert [cluster for piece in pieces for cluster in graphemes(piece)] == graphemes(lone)


def test_a_combining_accent_stays_on_its_letter() -> None:
    text = "cafe\u0301 au lait"
    assert pack(text, 4, utf8_len)[:2] == ["caf", "e\u0301 "]


def test_a_cluster_longer_than_the_limit_is_cut_between_code_points() -> None:
    zalgo = "a" + "\u0301" * 40  # one cluster, 81 bytes
    pieces = pack("x" + zalgo + "y", 20, utf8_len)
    assert "".join(pieces) == "x" + zalgo + "y"
    assert all(utf8_len(piece) <= 20 for piece in pieces)


@pytest.mark.parametrize(
    ("before", "inside", "after"),
    [
        ("看这里 ", f"[原视频]({YOUTUBE})", " 就行。"),
        ("链接：", YOUTUBE, "。完"),
        ("命令 ", "`a?b; c! d.`", " 然后"),
        ("", '<font color="info">绿，色！字。</font>', "之后"),
        ("", "**粗体；里面！有标点？**", "之后"),
    ],
)
def test_no_sentence_or_clause_ends_inside_a_construct(before: str, inside: str, after: str) -> None:
    text = before + inside + after
    start, end = len(before), len(before) + len(inside)
    for split in (split_sentences, split_clauses):
        cuts = boundaries(split(text))
        assert not [cut for cut in cuts if start < cut < end], split(text)


def test_a_youtube_link_is_not_cut_at_its_question_mark() -> None:
    link = f"[原视频]({YOUTUBE})"
    text = "这是一段介绍。" * 5 + link + "。后面还有一句。"
    for limit in range(utf8_len(link) + 3, utf8_len(text)):
        pieces = pack(text, limit, utf8_len)
        assert any(link in piece for piece in pieces), (limit, pieces)


def test_a_bold_run_or_font_span_that_fits_is_never_opened() -> None:
    bold, font = "**重点：不要切开。**", '<font color="info">绿色，也是字！</font>'
    text = f"前面的话，{bold}中间的话，{font}后面的话。"
    for limit in range(max(utf8_len(bold), utf8_len(font)), utf8_len(text)):
        pieces = pack(text, limit, utf8_len)
        assert any(bold in piece for piece in pieces) and any(font in piece for piece in pieces), (limit, pieces)


def test_a_sentence_that_ends_inside_bold_ends_after_its_closing_marker() -> None:
    assert split_sentences("你好。**重要的事。**然后。**Bold.** Next") == [
        "你好。",
        "**重要的事。**",
        "然后。",
        "**Bold.** ",
        "Next",
    ]


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("(https://x.y/a_(b))", "https://x.y/a_(b)"),
        ("见https://a.b/c。下一句", "https://a.b/c"),
        ("see https://a.b/c.", "https://a.b/c"),
        ("**https://a.b/c**", "https://a.b/c"),
        ('<font color="info">https://a.b/c</font>', "https://a.b/c"),
        ("https://zh.wikipedia.org/wiki/中国，然后", "https://zh.wikipedia.org/wiki/中国"),
        (f"[原视频]({YOUTUBE})", YOUTUBE),
    ],
)
def test_where_a_url_ends(text: str, url: str) -> None:
    found = [text[c.start : c.end] for c in constructs(text) if c.kind is Kind.URL]
    assert found == [url]


def test_a_megabyte_without_punctuation_is_split_in_linear_time() -> None:
    """Runs well within the test timeout (an earlier version was quadratic here)."""
    for text in ("字" * 1_000_000, "x" * 1_000_000, "👍🏻" * 250_000):
        pieces = pack(text, 4000, utf8_len)
        assert "".join(pieces) == text
        assert all(utf8_len(piece) <= 4000 for piece in pieces)
