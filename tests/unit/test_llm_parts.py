"""The LLM step's pure parts: answer cleaning, content guards, token budgets, pacing."""

from __future__ import annotations

import asyncio
import time

import pytest

from actors.llm.answers import clean_answer, strip_reasoning, strip_wrappers
from actors.llm.budget import Budget, context_from_error, estimate_tokens
from actors.llm.guards import overlap, proofread_problem, script, summary_problem
from actors.llm.pacing import AdaptiveLimit, backoff
from actors.llm.settings import LLMSettings
from tests.support.fake_llm import proofread_edit, summary_of
from tests.support.llm_text import chinese_transcript

ANSWER = "今天我们聊机器学习。\n\n它其实没有那么难。"


@pytest.mark.parametrize(
    "raw",
    [
        f"<think>\n先想一想。\n</think>\n\n{ANSWER}",  # closed
        f"<THINKING>想</THINKING>{ANSWER}",  # other spelling
        f"好的，用户要我校对……\n</think>\n\n{ANSWER}",  # close-only: the template opened it
        f"<think>a</think>\n<think>b</think>\n{ANSWER}",  # two blocks
        f"<reasoning>\n让我看看\n</reasoning>\n{ANSWER}",
    ],
)
def test_reasoning_is_stripped_in_every_closed_form(raw: str) -> None:
    assert strip_reasoning(raw) == ANSWER


def test_an_unclosed_think_block_leaves_only_what_came_before_it() -> None:
    assert strip_reasoning("<think>\n我需要想一想，这段文字") == ""
    assert strip_reasoning(f"{ANSWER}\n<think>后面的想法") == ANSWER


@pytest.mark.parametrize(
    "raw",
    [
        f"好的，以下是校对后的文本：\n\n{ANSWER}",
        f"Here is the corrected text:\n{ANSWER}",
        f"```\n{ANSWER}\n```",
        f"以下是校对结果：\n```text\n{ANSWER}\n```",
        f"“{ANSWER}”",
        f"{ANSWER}\n\n注：我修正了标点。",
        f"{ANSWER}\n希望对你有帮助！",
    ],
)
def test_prefaces_fences_quotes_and_notes_are_taken_off(raw: str) -> None:
    assert clean_answer(raw, ANSWER) == ANSWER


def test_lines_that_are_in_the_source_are_never_taken_off() -> None:
    source = "好的，下面我们开始：\n今天讲机器学习。\n以上就是今天的内容。"
    assert strip_wrappers(source, source) == source
    quoted = "“这句话”是他说的，“那句话”也是。"
    assert strip_wrappers(quoted, quoted) == quoted


def test_proofread_guard_passes_a_proofread_and_names_what_is_wrong_otherwise() -> None:
    text = chinese_transcript(900, seed=4)
    edited = proofread_edit(text)
    check = {"ratio_min": 0.7, "ratio_max": 1.5, "min_overlap": 0.5}
    assert overlap(text, edited) > 0.9
    assert proofread_problem(text, edited, **check) is None
    shuffled = "".join(sorted(text))  # the right characters, the right length, no sense
    assert "not a proofread" in (proofread_problem(text, shuffled, **check) or "")
    loop = ("我们来看看这个问题。" * 200)[: len(text)]
    assert proofread_problem(text, loop, **check) in ("repeats itself",) or "not a proofread" in (
        proofread_problem(text, loop, **check) or ""
    )
    english = "Today we talk about machine learning. " * 20
    assert "Latin script" in (proofread_problem(text, english, **check) or "")


def test_english_proofread_overlap_tells_a_fix_from_unrelated_text() -> None:
    text = "So today we are going to talk about machine learning and how gradient descent works. " * 4
    fixed = text.replace("gradient descent", "gradient-descent").replace("So today", "Today")
    other = "The weather was lovely yesterday and my grandmother baked an apple pie for dinner. " * 4
    assert overlap(text, fixed) > 0.8
    assert overlap(text, other) < 0.3


def test_script_counts_words_and_characters_not_letters() -> None:
    assert script("我们用 Transformer 模型训练") == "Chinese/Japanese"
    assert script("We train a 模型 with data") == "Latin"
    assert script("1234 ...") is None


def test_summary_guard() -> None:
    text = chinese_transcript(1500, seed=9)
    assert summary_problem(text, summary_of(text)) is None
    assert "not shorter" in (summary_problem(text, text) or "")  # an echo of the whole
    half = text[: len(text) * 6 // 10]
    assert "repeats the text" in (summary_problem(text, half) or "")  # an echo of the beginning
    assert "Latin script" in (summary_problem(text, "- The video is about many things.") or "")
    unrelated = "- 天地玄黄，宇宙洪荒。\n- 日月盈昃，辰宿列张。\n- 寒来暑往，秋收冬藏。"
    assert "not drawn from the text" in (summary_problem(text, unrelated) or "")
    copied = text[500:560]  # a passage, as SmolLM2 answers
    assert "not the bullet list" in (summary_problem(text, copied) or "")
    assert summary_problem(text, "1. " + summary_of(text).replace("\n- ", "\n2. ")[2:]) is None
    looping = "- 这个视频讲了很多。\n" * 40
    assert summary_problem(text, looping) in ("repeats itself",) or "not drawn" in (
        summary_problem(text, looping) or ""
    )


def test_token_estimates_err_high_for_the_usual_tokenizers() -> None:
    assert estimate_tokens("机器学习" * 100, 1.5) == 600
    assert estimate_tokens("machine learning " * 10, 1.5) == 68  # 170 characters, ~0.4 each
    budget = Budget(1.5, context=4096)
    system = "You proofread." * 10
    size = budget.proofread_chunk_chars(system, 3000, 1.5)
    chunk = "字" * size
    assert 700 < size < 1000
    assert budget.fits(system, chunk, budget.proofread_max_tokens(chunk, 1.5))
    assert not budget.fits(system, "字" * (size * 2), budget.proofread_max_tokens(chunk, 1.5))
    assert Budget(1.5).proofread_chunk_chars(system, 3000, 1.5) == 3000  # context unknown: the setting


def test_context_window_is_read_from_the_usual_error_messages() -> None:
    llama = (
        "This model's maximum context length is 4096 tokens. However, you requested 22136 tokens "
        "(22136 in the messages, None in the completion)."
    )
    assert context_from_error(llama) == 4096
    assert context_from_error("Requested tokens (5000) exceed context window of 2048") == 2048
    assert context_from_error("Invalid API key") is None


def test_default_backoff_spans_minutes_and_each_wait_is_bounded() -> None:
    settings = LLMSettings()
    waits = [backoff(n, settings.retry_base_s, settings.retry_max_s) for n in range(1, settings.max_retries + 1)]
    assert 300 <= sum(waits) <= 600  # a server restart or a per-minute quota, not forever
    assert max(waits) <= settings.retry_max_s
    assert backoff(1, 0.01, 5.0, retry_after=3.0) == 3.0  # the server's Retry-After wins
    assert backoff(1, 0.01, 5.0, retry_after=60.0) == 5.0  # up to retry_max_s


async def test_limit_halves_on_overload_and_recovers_one_step_per_calm_period() -> None:
    limit = AdaptiveLimit(4, recover_s=0.2)
    limit.overloaded()
    assert limit.limit == 2
    limit.overloaded()
    limit.overloaded()
    assert limit.limit == 1
    await asyncio.sleep(0.25)
    await limit.acquire()
    limit.release()
    assert limit.limit == 2
    await asyncio.sleep(0.45)
    await limit.acquire()
    limit.release()
    assert limit.limit == 4


async def test_limit_admits_waiters_in_order_and_holds_everyone_for_retry_after() -> None:
    limit = AdaptiveLimit(1, recover_s=60)
    order: list[int] = []

    async def user(number: int) -> None:
        await limit.acquire()
        order.append(number)
        await asyncio.sleep(0.01)
        limit.release()

    await asyncio.gather(*(user(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]

    limit.hold(0.3)
    started = time.monotonic()
    await limit.acquire()
    assert time.monotonic() - started >= 0.29
    limit.release()


async def test_a_waiter_cancelled_after_being_woken_passes_its_slot_on() -> None:
    limit = AdaptiveLimit(1, recover_s=60)
    await limit.acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0.01)
    limit.release()  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.wait_for(second, 1)
    assert limit.in_use == 1
