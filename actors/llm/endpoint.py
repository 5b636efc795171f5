"""One chat completion against the OpenAI-compatible server: bounded, paced, retried.

Each request first waits for a slot of the shared `AdaptiveLimit` (outside its clock),
then has `timeout_s` for the whole answer, streamed or not: `asyncio.timeout` around it
all, because httpx's timeout is per read and a server that trickles blank lines never
trips it. Retries back off for minutes (bounded by `retry_max_s` and the video's
deadline); Retry-After is honoured. Retries are ours (the openai client's are off) so
the policy is explicit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import openai
from openai.types.chat import ChatCompletionMessageParam

from actors.domain.errors import LLMError
from actors.llm.budget import Budget, Deadline, context_from_error
from actors.llm.failures import (
    is_context_error,
    is_retryable,
    retry_after,
    server_reason,
    wants_max_completion_tokens,
)
from actors.llm.pacing import AdaptiveLimit, backoff
from actors.llm.settings import LLMSettings
from actors.util.retry import retrying

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    """Tokens a request (or a sum of requests) cost, as the server counted them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


class StepFailed(LLMError):
    """A proofread or summary step that failed after its requests had cost tokens, which
    count all the same (`usage`)."""

    def __init__(self, message: str, code: str | None = None, usage: Usage | None = None) -> None:
        super().__init__(message, code)
        self.usage = usage or Usage()


@dataclass(frozen=True)
class Answer:
    """The text of a completion (reasoning_content ignored) and why it ended."""

    text: str
    finish_reason: str | None
    usage: Usage

    @property
    def cut(self) -> bool:
        """The output limit ended it: the text is incomplete."""
        return self.finish_reason == "length"


class ContextTooLong(LLMError):
    """The request did not fit the model's context; `context` is the window, when the server said."""

    code = "context_length_exceeded"

    def __init__(self, message: str, context: int | None = None) -> None:
        super().__init__(message)
        self.args = (message, context)
        self.context = context

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, self.context))


class _Retry(Exception):
    """One attempt failed in a way that waiting may fix: `error` is what was raised."""

    def __init__(
        self, reason: str, error: BaseException, *, overload: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.overload = overload  # 429 or timeout: the server has too much to do
        self.retry_after = retry_after


class Endpoint:
    """Chat completions with deadlines, shared pacing and retries; one per process."""

    def __init__(self, settings: LLMSettings, *, on_call: Callable[[str, float, bool], None] | None = None) -> None:
        if not settings.base_url:
            raise LLMError("no LLM base URL is configured", code="llm_not_configured")
        self.settings = settings
        self.limit = AdaptiveLimit(settings.concurrency, settings.concurrency_recover_s)
        self._on_call = on_call  # (model, seconds, ok) after each attempt (metrics)
        self._key = settings.api_key.get_secret_value() if settings.api_key else ""
        proxy = settings.proxy.get_secret_value() if settings.proxy else None
        self.client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            # Local servers (Ollama, vLLM, llama.cpp) take no key, but the client insists on one.
            api_key=self._key or "none",
            timeout=settings.timeout_s,  # a backstop: the deadline is asyncio.timeout in _attempt
            max_retries=0,  # retries are ours: see complete
            http_client=openai.DefaultAsyncHttpxClient(proxy=proxy) if proxy else None,  # VIDSCRIBE_LLM__PROXY
        )
        self._contexts: dict[str, int] = {}  # model -> context window, learnt
        self._completion_tokens_models: set[str] = set()  # models that want max_completion_tokens
        self._answered_by: dict[str, str] = {}  # model -> the model the server said answered

    async def aclose(self) -> None:
        await self.client.close()

    def budget(self, model: str) -> Budget:
        """Token sizes for `model`: the configured context, else what the server told us."""
        context = self.settings.context_tokens or self._contexts.get(model)
        return Budget(self.settings.tokens_per_char, context)

    def learn_context(self, model: str, context: int) -> None:
        if self._contexts.get(model) != context:
            log.info("LLM model %s: context window %d tokens", model, context)
        self._contexts[model] = context

    def reason(self, error: openai.APIStatusError) -> str:
        return server_reason(error, self._key)

    async def complete(
        self, model: str, system: str, user: str, *, max_tokens: int, label: str, deadline: Deadline
    ) -> Answer:
        """One chat completion, retried on 408/409/429/5xx, timeouts and network errors.

        Raises ContextTooLong when the request does not fit (never retried as it is),
        LLMError for other refusals, exhausted retries or the passed `deadline`."""
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        attempts = self.settings.max_retries + 1
        last: _Retry | None = None

        async def attempt() -> Answer:
            if deadline.passed:
                raise self._late(label, deadline, last)
            try:
                async with asyncio.timeout(deadline.remaining()):
                    await self.limit.acquire()
            except TimeoutError:
                raise self._late(label, deadline, last) from None
            try:
                return await self._attempt(model, messages, max_tokens, label, deadline)
            finally:
                self.limit.release()

        def delay_for(number: int, retry: _Retry) -> float:
            nonlocal last
            last = retry
            if retry.overload:
                self.limit.overloaded()
            if retry.retry_after is not None:
                self.limit.hold(min(retry.retry_after, self.settings.retry_max_s))
            delay = backoff(number, self.settings.retry_base_s, self.settings.retry_max_s, retry.retry_after)
            return max(0.0, min(delay, deadline.remaining()))  # past the deadline, the next attempt says so

        def on_retry(number: int, retry: _Retry, delay: float) -> None:
            log.warning("%s: %s; retry %d/%d in %.2fs", label, retry.reason, number, attempts - 1, delay)

        try:
            return await retrying(attempt, attempts=attempts, retry_on=_Retry, delay_for=delay_for, on_retry=on_retry)
        except _Retry as retry:
            if retry.overload:
                self.limit.overloaded()
            tries = f"{attempts} attempts" if attempts > 1 else "1 attempt"
            raise LLMError(f"{label} failed after {tries}: {retry.reason}") from retry.error

    def _late(self, label: str, deadline: Deadline, last: _Retry | None) -> LLMError:
        after = f" (last try: {last.reason})" if last is not None else ""
        return LLMError(f"{label}: not done within the video's {deadline.seconds:g}s{after}", code="llm_deadline")

    async def _attempt(
        self, model: str, messages: list[ChatCompletionMessageParam], max_tokens: int, label: str, deadline: Deadline
    ) -> Answer:
        seconds = min(self.settings.timeout_s, deadline.remaining())
        started = time.monotonic()
        ok = False
        try:
            async with asyncio.timeout(seconds):
                answer = await self._request(model, messages, max_tokens)
            ok = True
        except TimeoutError as e:
            raise _Retry(f"no complete answer within {seconds:.3g}s (timeout)", e, overload=True) from e
        except openai.APIStatusError as e:
            reason = f"HTTP {e.status_code}: {self.reason(e)}"
            if is_context_error(e):
                context = context_from_error(self.reason(e))
                if context is not None:
                    self.learn_context(model, context)
                raise ContextTooLong(f"{label}: the text does not fit the model's context ({reason})", context) from e
            if wants_max_completion_tokens(e) and model not in self._completion_tokens_models:
                self._completion_tokens_models.add(model)
                raise _Retry(f"{reason}; now sending max_completion_tokens", e) from e
            if not is_retryable(e):
                raise LLMError(f"{label}: the LLM endpoint answered {reason}") from e
            raise _Retry(reason, e, overload=e.status_code == 429, retry_after=retry_after(e)) from e
        except openai.APITimeoutError as e:
            raise _Retry(f"no answer within {seconds:.3g}s (timeout)", e, overload=True) from e
        except openai.APIConnectionError as e:
            raise _Retry(f"connection failed ({e.__cause__ or e})", e) from e
        except (openai.OpenAIError, ValueError) as e:
            raise LLMError(f"{label}: unusable answer from the LLM endpoint: {str(e)[:200]}") from e
        finally:
            if self._on_call is not None:
                self._on_call(model, time.monotonic() - started, ok)
        if answer.finish_reason is None:
            raise _Retry("the answer ended without a finish reason (connection cut?)", ValueError("no finish"))
        return answer

    async def _request(self, model: str, messages: list[ChatCompletionMessageParam], max_tokens: int) -> Answer:
        limit = (
            {"max_completion_tokens": max_tokens}
            if model in self._completion_tokens_models
            else {"max_tokens": max_tokens}
        )
        if self.settings.stream:
            return await self._streamed(model, messages, limit)
        response = await self.client.chat.completions.create(model=model, messages=messages, **limit)  # type: ignore[call-overload]
        self._note_model(model, response.model)
        if not response.choices:
            raise ValueError("an answer without choices")
        choice = response.choices[0]
        usage = response.usage
        return Answer(
            choice.message.content or "",  # reasoning_content, where servers send it, is not the answer
            choice.finish_reason,
            Usage(usage.prompt_tokens, usage.completion_tokens) if usage else Usage(),
        )

    async def _streamed(self, model: str, messages: list[ChatCompletionMessageParam], limit: dict[str, int]) -> Answer:
        stream = await self.client.chat.completions.create(  # type: ignore[call-overload]
            model=model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},  # else a streamed answer reports no tokens
            **limit,
        )
        parts: list[str] = []
        finish: str | None = None
        usage = Usage()
        async with stream:
            async for chunk in stream:
                if chunk.usage:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                if chunk.model:
                    self._note_model(model, chunk.model)
                for choice in chunk.choices[:1]:
                    if choice.delta.content:  # delta.reasoning_content is thinking: ignored
                        parts.append(choice.delta.content)
                    finish = choice.finish_reason or finish
        return Answer("".join(parts), finish, usage)

    def _note_model(self, asked: str, answered: str) -> None:
        """llama.cpp answers with whatever model it loaded, whatever the name asked for: say so once."""
        if not answered or asked in answered or answered in asked or self._answered_by.get(asked) == answered:
            return
        self._answered_by[asked] = answered
        log.warning("asked the LLM server for model %r, it answered with %r", asked, answered)
