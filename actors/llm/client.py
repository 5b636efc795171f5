"""Proofread and summarise transcripts with an OpenAI-compatible chat endpoint (no Ray).

System message: instructions plus context (title, author). User message: only the
transcript, or one chunk of it. Long transcripts are cut at sentence boundaries and
the chunks proofread concurrently (at most `settings.concurrency` at once), then joined
in order. A chunk whose answer is implausible keeps its original text and yields a
warning. Retries are ours (the openai client's are off) so the policy is explicit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from actors.domain.errors import LLMError
from actors.domain.video import VideoInfo
from actors.llm.settings import LLMSettings
from actors.util.retry import retrying
from actors.util.textsplit import pack

log = logging.getLogger(__name__)

PROOFREAD_INSTRUCTIONS = """\
You proofread an automatic speech-recognition transcript of a video.
- Fix recognition errors: wrong homophones, misheard words, names and terms the context makes clear.
- Fix punctuation and split the text into paragraphs (blank line between paragraphs).
- Keep the speaker's wording, order and language. Do not translate, summarise, shorten, explain \
or add anything.
- The text may be one part of a longer transcript and start or end mid-thought; leave it so.
- Output only the corrected text: no preface, no notes, no Markdown."""

SUMMARY_INSTRUCTIONS = """\
You write a summary of a video's transcript for readers who have not watched it.
- Write in the transcript's language (a Chinese transcript gets a Chinese summary).
- Output a Markdown bullet list: "- " items for the main points in the order they come, \
nested "  - " items for important details, and a last item with the conclusion if there is one.
- Only what the transcript says; no opinions of your own, no headings, no preface."""

# Statuses worth another try: rate limits, conflicts/timeouts reported by the server, 5xx.
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_MAX_RETRY_AFTER_S = 60.0
# Reasoning models served through Ollama/vLLM may prefix their answer with a think block.
_THINK_BLOCK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL)


@dataclass(frozen=True)
class ProofreadResult:
    """Proofread text and the warnings worth recording on the task."""

    text: str
    warnings: list[str]


class _Retry(Exception):
    """One attempt failed in a way that waiting may fix: `error` is the endpoint's exception."""

    def __init__(self, reason: str, error: Exception, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.retry_after = retry_after  # the server's Retry-After, in seconds


@dataclass(frozen=True)
class _Answer:
    text: str
    finish_reason: str | None


def chunk_text(text: str, chunk_chars: int) -> list[str]:
    """Pieces of at most `chunk_chars` characters, cut at paragraph/sentence boundaries."""
    return pack(text, chunk_chars)


def system_message(instructions: str, video: VideoInfo) -> str:
    """Instructions followed by the video's context."""
    context = [f"Title: {video.title or '(unknown)'}"]
    if video.author:
        context.append(f"Author: {video.author}")
    return f"{instructions}\n\nContext about the video (do not add it to your output):\n" + "\n".join(context)


class LLMClient:
    """Proofreads and summarises with the configured endpoint; one per process is enough."""

    def __init__(self, settings: LLMSettings, *, on_call: Callable[[str, float, bool], None] | None = None) -> None:
        if not settings.base_url:
            raise LLMError("no LLM base URL is configured", code="llm_not_configured")
        self._settings = settings
        self._on_call = on_call  # (model, seconds, ok) after each chat completion attempt (metrics)
        key = settings.api_key.get_secret_value() if settings.api_key else ""
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            # Local servers (Ollama, vLLM) take no key, but the client insists on one.
            api_key=key or "none",
            timeout=settings.timeout_s,
            max_retries=0,  # retries are ours: see _complete
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.close()

    async def proofread(
        self,
        text: str,
        video: VideoInfo,
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ProofreadResult:
        """Proofread `text` chunk by chunk; `on_progress(done, total)` after each chunk."""
        self._check_length(text)
        chunks = chunk_text(text, self._settings.chunk_chars)
        system = system_message(PROOFREAD_INSTRUCTIONS, video)
        slots = asyncio.Semaphore(self._settings.concurrency)
        done = 0
        started = time.monotonic()

        async def one(index: int, chunk: str) -> tuple[str, str | None]:
            nonlocal done
            async with slots:
                result = await self._proofread_chunk(index, len(chunks), chunk, system)
            done += 1
            if on_progress is not None:
                on_progress(done, len(chunks))
            return result

        tasks = [asyncio.create_task(one(i, chunk)) for i, chunk in enumerate(chunks)]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            # One chunk failed for good (or we were cancelled): stop the others too.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        warnings = [warning for _, warning in results if warning is not None]
        log.info(
            "proofread %s/%s: %d chars in %d chunks, %.1fs, %d warnings",
            video.platform,
            video.video_id,
            len(text),
            len(chunks),
            time.monotonic() - started,
            len(warnings),
        )
        return ProofreadResult("".join(piece for piece, _ in results), warnings)

    async def summarize(self, text: str, video: VideoInfo) -> str | None:
        """Bullet-point summary in the transcript's language; None for short transcripts."""
        if len(text.strip()) < self._settings.summary_min_chars:
            return None
        self._check_length(text)
        system = system_message(SUMMARY_INSTRUCTIONS, video)
        answer = await self._complete(self._settings.summary_model, system, text.strip(), "summary")
        summary = _clean(answer.text)
        if not summary:
            raise LLMError("summary: the LLM returned an empty answer")
        if answer.finish_reason == "length":
            log.warning("summary of %s/%s was cut at the output limit", video.platform, video.video_id)
        return summary

    def _check_length(self, text: str) -> None:
        if len(text) > self._settings.max_input_chars:
            raise LLMError(
                f"transcript has {len(text)} characters, more than the "
                f"{self._settings.max_input_chars} the LLM step accepts",
                code="transcript_too_long",
            )

    async def _proofread_chunk(self, index: int, total: int, chunk: str, system: str) -> tuple[str, str | None]:
        """The proofread chunk (or the original) and a warning when the answer was implausible."""
        body = chunk.strip()
        if not body:
            return chunk, None
        label = f"proofread chunk {index + 1}/{total}"
        answer = await self._complete(self._settings.proofread_model, system, body, label)
        fixed = _clean(answer.text)
        ratio = len(fixed) / len(body)
        if answer.finish_reason == "length":
            problem = "was cut at the output limit"
        elif not fixed:
            problem = "came back empty"
        elif not self._settings.ratio_min <= ratio <= self._settings.ratio_max:
            band = f"{self._settings.ratio_min:g}-{self._settings.ratio_max:g}"
            problem = f"has an implausible length (outside {band})"
        else:
            # Keep the whitespace around the chunk so paragraph breaks between chunks survive.
            lead = chunk[: len(chunk) - len(chunk.lstrip())]
            trail = chunk[len(chunk.rstrip()) :]
            return lead + fixed + trail, None
        warning = f"{label} {problem}: output/input length ratio {ratio:.2f}; kept the original text"
        log.warning(warning)
        return chunk, warning

    async def _complete(self, model: str, system: str, user: str, label: str) -> _Answer:
        """One chat completion, retried with exponential backoff on 429/5xx/timeouts/network."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        attempts = self._settings.max_retries + 1

        async def attempt() -> _Answer:
            try:
                response = await self._create(model, messages)
            except openai.APIStatusError as e:
                reason = f"HTTP {e.status_code}: {_short(e.message)}"
                if not (e.status_code in _RETRYABLE_STATUS or e.status_code >= 500):
                    raise LLMError(f"{label}: the LLM endpoint answered {reason}") from e
                raise _Retry(reason, e, _retry_after(e.response.headers.get("retry-after"))) from e
            except openai.APITimeoutError as e:
                raise _Retry(f"no answer within {self._settings.timeout_s:g}s (timeout)", e) from e
            except openai.APIConnectionError as e:
                raise _Retry(f"connection failed ({_short(str(e.__cause__ or e))})", e) from e
            except (openai.OpenAIError, ValueError) as e:
                raise LLMError(f"{label}: unusable answer from the LLM endpoint: {_short(str(e))}") from e
            if not response.choices:
                raise LLMError(f"{label}: the LLM endpoint answered without choices")
            choice = response.choices[0]
            return _Answer(choice.message.content or "", choice.finish_reason)

        def delay_for(number: int, retry: _Retry) -> float:
            delay = self._settings.retry_base_s * 2 ** (number - 1)
            return delay if retry.retry_after is None else max(delay, retry.retry_after)

        def on_retry(number: int, retry: _Retry, delay: float) -> None:
            log.warning("%s: %s; retry %d/%d in %.2fs", label, retry.reason, number, attempts - 1, delay)

        try:
            return await retrying(attempt, attempts=attempts, retry_on=_Retry, delay_for=delay_for, on_retry=on_retry)
        except _Retry as retry:
            tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
            raise LLMError(f"{label} failed after {tries}: {retry.reason}") from retry.error

    async def _create(self, model: str, messages: list[ChatCompletionMessageParam]) -> ChatCompletion:
        """One chat completion attempt, timed for `on_call`."""
        started = time.monotonic()
        try:
            response = await self._client.chat.completions.create(model=model, messages=messages)
        except Exception:
            if self._on_call is not None:
                self._on_call(model, time.monotonic() - started, False)
            raise
        if self._on_call is not None:
            self._on_call(model, time.monotonic() - started, True)
        return response


def _clean(answer: str) -> str:
    return _THINK_BLOCK.sub("", answer).strip()


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta form only), capped."""
    try:
        return min(float(value), _MAX_RETRY_AFTER_S) if value else None
    except ValueError:
        return None
