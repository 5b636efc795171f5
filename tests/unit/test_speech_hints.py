"""What the page tells Whisper, and the repetition loops found in its output."""

from __future__ import annotations

import pytest

from actors.domain.video import Segment, VideoInfo
from actors.media.resolve import _video_info
from actors.speech.hints import PROMPT_PAGE_CHARS, STYLE_SENTENCES, PageHints, script_language
from actors.speech.loops import Loop, collapse_loops, find_loops, repeated_phrase


@pytest.mark.parametrize(
    ("title", "language"),
    [
        ("用Python调用ChatGPT接口，三分钟上手", "zh"),
        ("【美食】成都街头的担担面", "zh"),
        ("東京のラーメン屋さんを巡る", "ja"),
        ("서울 여행 브이로그", "ko"),
        ("How to cook rice", None),
        ("iPhone 16 Pro 评测", "zh"),  # a third of the letters is enough: brand names stay Latin
        ("Python tutorial 第1集", "zh"),
        ("Python tutorial for beginners, part 1 (中)", None),  # one Han character among many words
        ("2024!!!", None),
    ],
)
def test_the_titles_script_names_its_language(title: str, language: str | None) -> None:
    assert script_language(title) == language


def test_a_chinese_prompt_is_simplified_punctuated_and_ends_with_the_page_words() -> None:
    hints = PageHints(title="用Python调用ChatGPT接口", description="讲解 OpenAI 的\n接口", tags=("编程", "AI"))
    prompt = hints.prompt("zh")
    assert prompt == STYLE_SENTENCES["zh"] + "用Python调用ChatGPT接口 编程 AI 讲解 OpenAI 的 接口"
    assert hints.prompt("en") == "用Python调用ChatGPT接口 编程 AI 讲解 OpenAI 的 接口"  # no style sentence


def test_a_long_description_is_cut_to_whispers_prompt_budget() -> None:
    prompt = PageHints(title="标题", description="很长的说明。" * 500).prompt("zh")
    assert prompt is not None and prompt.startswith(STYLE_SENTENCES["zh"] + "标题 很长的说明。")
    assert len(prompt) == len(STYLE_SENTENCES["zh"]) + PROMPT_PAGE_CHARS


def test_an_empty_page_gives_no_prompt_outside_chinese() -> None:
    assert PageHints().prompt("en") is None
    assert PageHints().prompt("zh") == STYLE_SENTENCES["zh"]


def test_ytdlps_page_fields_become_the_videos_hints() -> None:
    info = {
        "extractor": "BiliBili",
        "extractor_key": "BiliBili",
        "id": "BV1xx",
        "title": "用Python调用ChatGPT接口",
        "description": "说明" * 2000,
        "tags": ["Python", None, "", "ChatGPT"] + [f"t{n}" for n in range(40)],
        "language": "zh-CN",
    }
    video = _video_info(info, "https://www.bilibili.com/video/BV1xx", None)
    assert video.language == "zh" and video.tags[:2] == ["Python", "ChatGPT"] and len(video.tags) == 20
    assert len(video.description) == 1000
    hints = PageHints.of(video)
    assert (hints.title, hints.language) == ("用Python调用ChatGPT接口", "zh")
    assert PageHints.of(VideoInfo(url="u", platform="p", video_id="v")).language is None


def seg(text: str, start: float = 0.0) -> Segment:
    return Segment(start=start, end=start + 2.0, text=text)


@pytest.mark.parametrize(
    "text",
    [
        "谢谢大家谢谢大家谢谢大家谢谢大家谢谢大家",
        "我们今天来讲讲我们今天来讲讲我们今天来讲讲我们今天来讲讲",
        "and then you know, and then you know, and then you know, and then you know, ",
        "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈",
    ],
)
def test_a_phrase_back_to_back_beyond_reason_is_a_loop(text: str) -> None:
    assert repeated_phrase(text) is not None
    assert find_loops([seg("开头。"), seg(text, 2), seg("结尾。", 4)]) == [Loop(1, 1)]


@pytest.mark.parametrize(
    "text",
    [
        "好的好的，我们开始吧。",
        "对对对，就是这样。",
        "哈哈哈哈，太好笑了。",
        "This is very, very, very good.",
        "一二三四五六七八九十",
        "----------------",  # no words: a rule line, not speech
    ],
)
def test_people_repeating_themselves_is_not_a_loop(text: str) -> None:
    assert repeated_phrase(text) is None
    assert find_loops([seg(text)]) == []


def test_the_same_sentence_as_three_segments_in_a_row_is_one_loop() -> None:
    segments = [seg("开始了。"), *(seg("欢迎收看本期节目。", 2 * n) for n in range(1, 6)), seg("今天讲面条。", 12)]
    [loop] = find_loops(segments)
    assert (loop.first, loop.last, loop.span(segments)) == (1, 5, (2.0, 12.0))
    collapsed = collapse_loops(segments)
    assert [s.text for s in collapsed] == ["开始了。", "欢迎收看本期节目。", "今天讲面条。"]
    assert (collapsed[1].start, collapsed[1].end) == (2.0, 12.0)  # the kept one covers the run
    # Two honest repeats, or a short thanks three times, are speech.
    assert find_loops([seg("欢迎收看。"), seg("欢迎收看。"), seg("好。")]) == []
    assert find_loops([seg("谢谢。"), seg("谢谢。"), seg("谢谢。")]) == []


def test_collapsing_writes_a_looping_phrase_once_and_keeps_the_rest() -> None:
    [kept] = collapse_loops([seg("他说谢谢大家谢谢大家谢谢大家谢谢大家谢谢大家。然后走了。")])
    assert kept.text == "他说谢谢大家。然后走了。"
