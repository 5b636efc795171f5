"""LLM proofreading and summaries: the real openai client against the local fake server."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from actors.domain.errors import LLMError
from actors.llm.client import chunk_text
from tests.support.fake_llm import PROOFREAD_MODEL, SUMMARY_MODEL, FakeLLM, proofread_edit
from tests.support.llm_text import VIDEO, chinese_transcript, full_width


async def test_short_text_is_proofread_with_instructions_in_system_and_only_text_in_user(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = "今天我们来聊一聊  机器学习,它其实没有那么难"
    async with client_for() as llm:
        result = await llm.proofread(text, VIDEO)

    assert result.text == "今天我们来聊一聊 机器学习，它其实没有那么难。"
    assert result.warnings == []
    [request] = fake_llm.requests
    assert request.model == PROOFREAD_MODEL
    assert request.user == text
    assert "proofread" in request.system.lower()
    assert VIDEO.title in request.system
    assert f"Author: {VIDEO.author}" in request.system
    assert text not in request.system
    assert request.api_key == "none"  # no key configured: a placeholder, as local servers expect


async def test_the_page_reaches_both_steps_as_context_never_as_transcript(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    # The ASR wrote 拜登 for Python: the page's words are what lets the LLM put it right.
    video = VIDEO.model_copy(
        update={"description": "本期讲用Python调用ChatGPT接口。" + "啊" * 2000, "tags": ["Python", "ChatGPT"]}
    )
    text = chinese_transcript(400).replace("机器学习", "用拜登调用接口", 1)
    async with client_for() as llm:
        await llm.proofread(text, video)
        await llm.summarize(text, video)

    assert len(fake_llm.requests) == 2
    for request in fake_llm.requests:
        assert "Tags: Python, ChatGPT" in request.system
        assert "Description: 本期讲用Python调用ChatGPT接口。" in request.system
        assert len(request.system) < 2000  # the description is bounded
        assert "Python" not in request.user and "Description" not in request.user


async def test_long_transcript_is_chunked_proofread_concurrently_and_rejoined_in_order(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(30_000)
    assert 30_000 <= len(text) < 30_100
    chunks = chunk_text(text, 3000)
    fake_llm.latency = (0.05, 0.15)
    progress: list[tuple[int, int]] = []
    async with client_for(chunk_chars=3000, concurrency=3) as llm:
        result = await llm.proofread(text, VIDEO, on_progress=lambda *done_total: progress.append(done_total))

    assert result.warnings == []
    assert result.text == full_width(text)
    assert result.text != text  # the edits really came from the LLM
    requests = fake_llm.requests
    assert len(requests) == len(chunks) >= 5
    assert sorted(r.user for r in requests) == sorted(c.strip() for c in chunks)
    assert all(len(r.user) <= 3000 for r in requests)
    assert 2 <= fake_llm.max_in_flight <= 3
    assert progress[-1] == (len(chunks), len(chunks))


def test_chunks_cut_at_sentence_ends_and_rejoin_exactly() -> None:
    text = chinese_transcript(10_000, seed=3).replace("\n", "")  # one long paragraph
    chunks = chunk_text(text, 1000)
    assert "".join(chunks) == text
    assert all(len(c) <= 1000 for c in chunks)
    assert all(c[-1] in "。！？" for c in chunks)


async def test_rate_limit_is_retried_and_succeeds(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("429")
    async with client_for() as llm:
        result = await llm.proofread("你好,世界。", VIDEO)
    assert result.text == "你好，世界。"
    assert [r.status for r in fake_llm.requests] == [429, 200]


async def test_server_errors_exhaust_retries_with_backoff(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("500", "500", "500")
    async with client_for(max_retries=2, retry_base_s=0.1) as llm:
        with pytest.raises(LLMError) as caught:
            await llm.proofread("你好,世界。", VIDEO)

    assert caught.value.code == "llm_failed"
    assert "HTTP 500" in caught.value.message
    assert "3 attempts" in caught.value.message
    requests = fake_llm.requests
    assert len(requests) == 3
    gaps = [b.started - a.ended for a, b in itertools.pairwise(requests) if a.ended]
    assert gaps[0] >= 0.1  # exponential backoff: the base delay,
    assert gaps[1] >= 0.2  # then twice the base


async def test_client_error_is_not_retried(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("401")
    async with client_for() as llm:
        with pytest.raises(LLMError, match="HTTP 401"):
            await llm.proofread("你好,世界。", VIDEO)
    assert len(fake_llm.requests) == 1


async def test_timeout_is_retried(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("timeout")
    async with client_for(timeout_s=0.3) as llm:
        result = await llm.proofread("你好,世界。", VIDEO)
    assert result.text == "你好，世界。"
    first, second = fake_llm.requests
    assert first.outcome == "timeout"
    assert second.status == 200
    assert second.started - first.started >= 0.3


async def test_persistent_timeout_raises_a_clear_error(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("timeout", "timeout")
    async with client_for(timeout_s=0.2, max_retries=1) as llm:
        with pytest.raises(LLMError, match="timeout"):
            await llm.proofread("你好,世界。", VIDEO)


async def test_dropped_connection_is_retried(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("disconnect")
    async with client_for() as llm:
        result = await llm.proofread("你好,世界。", VIDEO)
    assert result.text == "你好，世界。"
    assert len(fake_llm.requests) == 2


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        ("garbage_short", r"implausible length \(output/input length ratio 0\.0\d"),
        ("empty", "came back empty"),
        ("nonsense", r"is not a proofread of it \(overlap 0\.\d\d"),
        ("english", "is in Latin script, the text is in Chinese/Japanese"),
    ],
)
async def test_implausible_chunk_keeps_original_text_and_warns(
    fake_llm: FakeLLM, client_for: Callable[..., Any], step: str, problem: str
) -> None:
    text = chinese_transcript(2500, seed=11)
    chunks = chunk_text(text, 1000)
    assert len(chunks) == 3
    fake_llm.script(step)
    async with client_for(chunk_chars=1000, concurrency=2) as llm:
        result = await llm.proofread(text, VIDEO)

    # The first request to arrive got the bad answer; find which chunk it was.
    bad = next(r for r in fake_llm.requests if r.outcome == step)
    index = next(i for i, c in enumerate(chunks) if c.strip() == bad.user)
    expected = [c if i == index else full_width(c) for i, c in enumerate(chunks)]
    assert result.text == "".join(expected)
    assert result.kept == 1
    [warning] = result.warnings
    assert f"chunk {index + 1}/3" in warning
    assert re.search(problem, warning), warning
    assert warning.endswith("kept the original text")


@pytest.mark.parametrize("step", ["truncated", "garbage_long", "loop"])
async def test_an_answer_cut_at_the_output_limit_is_never_kept_its_chunk_is_redone_in_halves(
    fake_llm: FakeLLM, client_for: Callable[..., Any], step: str
) -> None:
    text = chinese_transcript(2500, seed=11)
    fake_llm.script(step)
    async with client_for(chunk_chars=1000, concurrency=2) as llm:
        result = await llm.proofread(text, VIDEO)

    assert result.text == full_width(text)
    assert result.warnings == []
    bad = next(r for r in fake_llm.requests if r.outcome == step)
    halves = [r for r in fake_llm.requests if r.user in bad.user and r is not bad]
    assert len(halves) >= 2
    assert "".join(r.user for r in halves).replace("\n", "") == bad.user.replace("\n", "")
    assert all(r.max_tokens is not None and r.max_tokens < 2 * len(r.user) * 2 for r in fake_llm.requests)


async def test_a_chunk_whose_answer_is_always_cut_keeps_its_original_text(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(700, seed=2)
    fake_llm.responder = lambda request: proofread_edit(request.user) * 4  # never fits max_tokens
    async with client_for(chunk_chars=1000) as llm:
        with pytest.raises(LLMError, match=r"cut at the output limit|implausible length"):
            await llm.proofread(text, VIDEO)  # nothing could be proofread: the step fails
    assert len(fake_llm.requests) > 4  # split and redone, down to small pieces


async def test_summary_is_skipped_for_short_transcripts(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    async with client_for(summary_min_chars=200) as llm:
        assert await llm.summarize("太短了,没什么可总结的。", VIDEO) is None
    assert fake_llm.requests == []


async def test_summary_is_bullets_from_the_summary_model(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    text = chinese_transcript(800, seed=5)
    async with client_for(summary_min_chars=200) as llm:
        summary = await llm.summarize(text, VIDEO)

    assert summary is not None
    lines = summary.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("- ") for line in lines)
    assert lines[0][2:] == text.splitlines()[0]
    [request] = fake_llm.requests
    assert request.model == SUMMARY_MODEL
    assert request.user == text
    assert "summary" in request.system.lower()
    assert VIDEO.title in request.system


async def test_too_long_transcript_is_rejected_before_any_call(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(1500)
    async with client_for(max_input_chars=1000) as llm:
        with pytest.raises(LLMError) as proofread_error:
            await llm.proofread(text, VIDEO)
        with pytest.raises(LLMError) as summary_error:
            await llm.summarize(text, VIDEO)
    assert proofread_error.value.code == summary_error.value.code == "transcript_too_long"
    assert fake_llm.requests == []


async def test_api_key_is_sent_but_never_logged(
    fake_llm: FakeLLM, client_for: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.script("500", "500")
    caplog.set_level(logging.DEBUG)
    async with client_for(api_key=SecretStr("sk-very-secret"), max_retries=1) as llm:
        with pytest.raises(LLMError) as caught:
            await llm.proofread("你好,世界。", VIDEO)
    assert [r.api_key for r in fake_llm.requests] == ["sk-very-secret"] * 2
    assert "sk-very-secret" not in caplog.text
    assert "sk-very-secret" not in str(caught.value)
