"""The LLM step against servers that behave like real ones (issue #19, one test per defect).

Each test makes the stand-in do what a real server was seen doing (llama.cpp serving one
request at a time, a looping small model, DeepSeek's blank lines, reasoning templates,
context-length 400s, 429s with Retry-After) and checks what the user would get.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from actors.domain.errors import LLMError
from actors.llm.client import chunk_text
from tests.support.fake_llm import PROOFREAD_MODEL, FakeLLM, fake_tokens, proofread_edit
from tests.support.llm_text import VIDEO, chinese_transcript, full_width


@pytest.fixture
def short_hang(fake_llm: FakeLLM) -> Iterator[FakeLLM]:
    """The stand-in with stalls of 4 s instead of 30 (a client that waits them out fails the test fast)."""
    hang = fake_llm.hang_s
    fake_llm.hang_s = 4.0
    yield fake_llm
    fake_llm.hang_s = hang


# 1. No max_tokens: a looping model ran until the timeout on every attempt.
async def test_1_a_looping_model_is_stopped_by_max_tokens_and_its_chunk_redone_in_halves(
    short_hang: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(600, seed=1)
    short_hang.script("loop", "loop")  # without an output limit each loops until the stall ends
    started = time.monotonic()
    async with client_for(timeout_s=1.0, max_retries=1) as llm:
        result = await llm.proofread(text, VIDEO)

    assert time.monotonic() - started < 3
    assert result.text == full_width(text)
    assert result.warnings == []
    requests = short_hang.requests
    assert all(r.max_tokens is not None for r in requests)
    assert all(r.max_tokens <= 3 * len(r.user) + 64 for r in requests if r.max_tokens)
    assert all(r.ended is not None and r.ended - r.started < 1 for r in requests)


# 2. Queue time counted against the timeout: CONCURRENCY=4 against a one-at-a-time server.
async def test_2_slots_are_taken_before_the_clock_starts_and_shared_by_all_videos(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    fake_llm.serial = True
    fake_llm.latency = 0.25
    text = chinese_transcript(900, seed=2)
    async with client_for(concurrency=1, timeout_s=0.45, max_retries=0, chunk_chars=300) as llm:
        first, second = await asyncio.gather(
            llm.proofread(text, VIDEO), llm.proofread(chinese_transcript(900, seed=3), VIDEO)
        )

    assert first.warnings == second.warnings == []
    assert first.text == full_width(text)
    assert fake_llm.max_in_flight == 1  # one server, one queue: ours, not the server's


async def test_2_timeouts_shrink_the_concurrency_until_requests_stop_queueing_at_the_server(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    fake_llm.serial = True  # and abandoned requests still run, as on llama.cpp
    fake_llm.latency = 0.15
    text = chinese_transcript(1800, seed=4)
    assert len(chunk_text(text, 300)) >= 6
    async with client_for(concurrency=4, timeout_s=0.4, max_retries=6, chunk_chars=300) as llm:
        result = await llm.proofread(text, VIDEO)
        limit = llm._endpoint.limit.limit  # the adaptive limit went down

    assert result.warnings == []
    assert result.text == full_width(text)
    assert limit < 4


# 3. One chunk's hard failure failed the whole proofread.
@pytest.mark.parametrize("failure", ["400", "500", "timeout"])
async def test_3_a_failed_chunk_keeps_its_text_and_the_others_keep_their_proofread(
    short_hang: FakeLLM, client_for: Callable[..., Any], failure: str
) -> None:
    text = chinese_transcript(2500, seed=11)
    chunks = chunk_text(text, 1000)
    short_hang.script(failure)  # refused, or retries spent (none here)
    async with client_for(chunk_chars=1000, concurrency=1, max_retries=0, timeout_s=0.5) as llm:
        result = await llm.proofread(text, VIDEO)

    assert result.text == chunks[0] + full_width(chunks[1]) + full_width(chunks[2])
    [warning] = result.warnings
    assert warning.startswith("proofread chunk 1/3")
    assert warning.endswith("kept the original text")


# 4. The summary was never chunked: context_length_exceeded 400 on a long transcript.
async def test_4_a_summary_too_long_for_the_context_is_made_in_parts(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    fake_llm.context_tokens = 1500
    text = chinese_transcript(4000, seed=6)
    async with client_for(max_retries=0) as llm:
        summary = await llm.summarize(text, VIDEO)

    assert summary is not None and summary.startswith("- ")
    first, *rest = fake_llm.requests
    assert first.status == 400  # the whole text did not fit; the window came with the refusal
    assert len(rest) >= 3 and all(r.status == 200 for r in rest)
    parts = [r for r in rest if "one part of a long" in r.system]
    assert len(parts) >= 3
    assert all(r.user in text for r in parts)  # parts of the transcript, all of it, each once
    assert len(text) - len(parts) <= sum(len(r.user) for r in parts) <= len(text)
    assert "combine" in rest[-1].system


@pytest.mark.parametrize("told", ["setting", "models_list"])
async def test_4_a_known_context_cuts_the_summary_into_parts_before_any_refusal(
    fake_llm: FakeLLM, client_for: Callable[..., Any], told: str
) -> None:
    fake_llm.context_tokens = 1500
    overrides: dict[str, Any] = {"max_retries": 0}
    if told == "setting":
        overrides["context_tokens"] = 1500
    else:
        fake_llm.listed_context = 1500  # vLLM says it in /v1/models
    async with client_for(**overrides) as llm:
        summary = await llm.summarize(chinese_transcript(4000, seed=6), VIDEO)
    assert summary is not None
    assert all(r.status == 200 for r in fake_llm.requests)


# 5. No quality check on the summary: a cut answer and an echo were delivered.
@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("echo", "not shorter than the text"),
        ("english", "Latin script"),
        ("nonsense", "not drawn from the text"),
    ],
)
async def test_5_a_summary_that_is_not_one_is_refused_with_the_reason(
    fake_llm: FakeLLM, client_for: Callable[..., Any], step: str, reason: str
) -> None:
    fake_llm.script(step)
    async with client_for() as llm:
        with pytest.raises(LLMError, match=reason) as refused:
            await llm.summarize(chinese_transcript(1200, seed=8), VIDEO)
    assert refused.value.code == "summary_rejected"


async def test_5_a_summary_cut_at_the_output_limit_is_never_delivered(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(1200, seed=8)
    fake_llm.script("truncated")  # once: the parts' summaries fit
    async with client_for() as llm:
        summary = await llm.summarize(text, VIDEO)
    assert summary is not None
    cut = fake_llm.requests[0]
    assert cut.outcome == "truncated"
    assert summary not in cut.user  # not the cut answer: remade from the parts
    assert len(fake_llm.requests) >= 4

    fake_llm.reset()
    fake_llm.responder = lambda request: "- 这个视频讲了机器学习。" * 400  # always past max_tokens
    async with client_for() as llm:
        with pytest.raises(LLMError, match="cut at the output limit"):
            await llm.summarize(text, VIDEO)


# 6. The proofread check looked only at length: garbage of the right length passed.
@pytest.mark.parametrize(("step", "reason"), [("nonsense", "not a proofread"), ("english", "Latin script")])
async def test_6_a_proofread_in_other_words_keeps_the_original(
    fake_llm: FakeLLM, client_for: Callable[..., Any], step: str, reason: str
) -> None:
    text = chinese_transcript(2500, seed=11)
    chunks = chunk_text(text, 1000)
    fake_llm.script(step)  # nonsense: the right script and length, other characters
    async with client_for(chunk_chars=1000, concurrency=1) as llm:
        result = await llm.proofread(text, VIDEO)
    assert result.text == chunks[0] + full_width(chunks[1]) + full_width(chunks[2])
    [warning] = result.warnings
    assert reason in warning


@pytest.mark.parametrize("step", ["preamble", "fenced"])
async def test_6_a_preface_or_fence_around_a_proofread_is_taken_off(
    fake_llm: FakeLLM, client_for: Callable[..., Any], step: str
) -> None:
    text = chinese_transcript(600, seed=12)
    fake_llm.script(step)
    async with client_for() as llm:
        result = await llm.proofread(text, VIDEO)
    assert result.text == full_width(text)
    assert result.warnings == []


# 7. timeout_s was httpx's per-read timeout: blank lines trickled in held a call far past it.
@pytest.mark.parametrize("stream", [False, True])
async def test_7_a_server_trickling_blank_lines_is_cut_at_the_deadline(
    short_hang: FakeLLM, client_for: Callable[..., Any], stream: bool
) -> None:
    short_hang.script("trickle")
    started = time.monotonic()
    async with client_for(timeout_s=0.6, stream=stream) as llm:
        result = await llm.proofread("你好,世界。", VIDEO)
    assert time.monotonic() - started < 2.5  # the trickle lasts 4 s
    assert result.text == "你好，世界。"
    assert [r.outcome for r in short_hang.requests] == ["trickle", "ok"]
    assert all(r.stream is stream for r in short_hang.requests)


async def test_7_a_videos_llm_work_ends_by_its_deadline_with_what_is_done(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(2500, seed=11)
    fake_llm.serial = True
    fake_llm.latency = 0.4  # chunks 1 and 2 are done at 0.8 s, chunk 3 would be at 1.2 s
    started = time.monotonic()
    async with client_for(chunk_chars=1000, concurrency=1, timeout_s=5, video_timeout_s=1.0) as llm:
        deadline = llm.deadline()
        result = await llm.proofread(text, VIDEO, deadline=deadline)
        with pytest.raises(LLMError, match="not done within the video's 1s") as late:
            await llm.summarize(text, VIDEO, deadline=deadline)
    assert time.monotonic() - started < 1.5
    assert late.value.code == "llm_deadline"
    [warning] = result.warnings
    assert warning.startswith("proofread chunk 3/3: not done within the video's 1s")
    assert result.kept == 1


# 8. Reasoning slipped through: close-only and unclosed <think> came back unchanged.
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("step", ["think_closed", "think_close_only", "reasoning_field"])
async def test_8_reasoning_never_reaches_the_text(
    fake_llm: FakeLLM, client_for: Callable[..., Any], step: str, stream: bool
) -> None:
    text = chinese_transcript(600, seed=13)
    fake_llm.script(step)
    async with client_for(stream=stream) as llm:
        result = await llm.proofread(text, VIDEO)
    assert result.text == full_width(text)
    assert result.warnings == []


async def test_8_an_answer_that_is_all_unclosed_reasoning_keeps_the_original(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    text = chinese_transcript(2500, seed=11)
    fake_llm.script("think_unclosed")
    async with client_for(chunk_chars=1000, concurrency=1) as llm:
        result = await llm.proofread(text, VIDEO)
    assert "想一想" not in result.text
    [warning] = result.warnings
    assert "came back empty" in warning


# 9. Error details were lost: "HTTP 401: Error code: 401" without the server's reason.
@pytest.mark.parametrize(("style", "reason"), [("fastapi", "Invalid API key"), ("openai", "Incorrect API key")])
async def test_9_an_error_keeps_the_servers_reason_but_never_the_key(
    fake_llm: FakeLLM, client_for: Callable[..., Any], style: str, reason: str
) -> None:
    fake_llm.required_key = "sk-right-key-123456"
    fake_llm.error_style = style
    async with client_for(api_key=SecretStr("sk-wrong-key-987654")) as llm:
        with pytest.raises(LLMError) as caught:
            await llm.proofread("你好,世界。", VIDEO)
    assert "HTTP 401" in caught.value.message
    assert reason in caught.value.message
    assert "987654" not in caught.value.message


# 10. Retries covered ~7 s and ignored Retry-After.
async def test_10_retry_after_holds_every_request_not_only_the_refused_one(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    fake_llm.retry_after = 0.5
    fake_llm.latency = 0.05
    fake_llm.script("429")
    text = chinese_transcript(2500, seed=11)
    async with client_for(chunk_chars=1000, concurrency=2) as llm:
        result = await llm.proofread(text, VIDEO)
    assert result.warnings == []
    refused = next(r for r in fake_llm.requests if r.status == 429)
    assert refused.ended is not None
    later = [r for r in fake_llm.requests if r.started > refused.ended]
    assert later and all(r.started >= refused.ended + 0.45 for r in later)


async def test_10_rate_limits_halve_the_concurrency(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    fake_llm.script("429", "429")
    async with client_for(concurrency=4, chunk_chars=500, concurrency_recover_s=60) as llm:
        result = await llm.proofread(chinese_transcript(2500, seed=11), VIDEO)
        assert llm._endpoint.limit.limit == 1
    assert result.warnings == []


# 11. A wrong model name was never checked.
async def test_11_a_model_the_server_does_not_list_is_reported_at_start(
    fake_llm: FakeLLM, client_for: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with client_for(summary_model="gpt-nonexistent") as llm:
        problems = await llm.check()
        await asyncio.sleep(0.2)  # the check the client started by itself
    [problem] = problems
    assert "has no model gpt-nonexistent (it lists: fake-proofread, fake-summary)" in problem
    assert "VIDSCRIBE_LLM__SUMMARY_MODEL" in problem
    assert "gpt-nonexistent" in caplog.text  # logged at start, before any task
    assert fake_llm.requests == []


async def test_11_a_server_answering_with_another_model_is_noticed(
    fake_llm: FakeLLM, client_for: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    fake_llm.served_model = "smollm2-135m"  # llama.cpp answers with what it loaded
    async with client_for() as llm:
        await llm.proofread("你好,世界。", VIDEO)
        await llm.proofread("你好,世界。", VIDEO)
    assert caplog.text.count(f"asked the LLM server for model '{PROOFREAD_MODEL}', it answered with") == 1


async def test_11_a_wrong_model_on_a_strict_server_fails_with_its_reason(
    fake_llm: FakeLLM, client_for: Callable[..., Any]
) -> None:
    fake_llm.strict_models = True
    async with client_for(proofread_model="gpt-nonexistent") as llm:
        with pytest.raises(LLMError, match=r"HTTP 404: The model `gpt-nonexistent` does not exist"):
            await llm.proofread("你好,世界。", VIDEO)


# 7 (usage): the tokens each step cost, as the server counted them.
async def test_usage_is_summed_over_a_steps_requests(fake_llm: FakeLLM, client_for: Callable[..., Any]) -> None:
    text = chinese_transcript(2500, seed=11)
    async with client_for(chunk_chars=1000) as llm:
        result = await llm.proofread(text, VIDEO)
    assert result.usage.completion_tokens == sum(fake_tokens(proofread_edit(r.user)) for r in fake_llm.requests)
    assert result.usage.prompt_tokens > result.usage.completion_tokens
