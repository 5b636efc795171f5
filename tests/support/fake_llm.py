"""Pytest plugin: a local OpenAI-compatible chat server with scripted latency and failures.

`FakeLLM` serves `POST /v1/chat/completions` (and `GET /v1/models`) with aiohttp on
127.0.0.1 in a background thread, so the real `openai` client — in this process or in
a Ray worker — talks HTTP to it. Answers are deterministic: proofread requests get the
user text back with light edits (length ratio ~1), summary requests a short "- " list.
Like a real server it counts tokens (1 per CJK character, 1 per 4 other characters),
cuts an answer at `max_tokens` with finish_reason "length", streams server-sent events
when asked, and names its reason in error bodies.

    fake.latency = 0.05 or (0.02, 0.08)       # seconds per request, fixed or random
    fake.script("429", "500", "timeout", "truncated", "garbage_short")
    fake.required_key = "sk-right"             # any other bearer token gets 401
    fake.requests, fake.max_in_flight          # what arrived, peak concurrency
    fake.serial = True                         # one request at a time, the rest queue (llama.cpp,
                                               # Ollama on CPU); abandoned requests still run
    fake.context_tokens = 4096                 # longer prompts + max_tokens get llama.cpp's 400
    fake.rate_limit_every = 3                  # every third request gets 429 ...
    fake.retry_after = 0.2                     # ... with this Retry-After (also for scripted 429s)
    fake.error_style = "fastapi"               # errors as {"detail": ...} (llama-cpp-python)
    fake.strict_models = True                  # unknown model names get 404 (OpenAI, DeepSeek)
    fake.served_model = "smollm2"              # the model answers name (llama.cpp names its own)

Run standalone for manual checks: `python -m tests.support.fake_llm --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from actors.llm.client import LLMClient
from actors.llm.settings import LLMSettings
from actors.util.textsplit import split_sentences
from tests.support.aioserver import BackgroundServer

# Scripted outcomes; a bare three-digit string ("503") answers that HTTP status.
STEPS = (
    "ok",
    "timeout",  # no answer for hang_s
    "truncated",  # half the answer, finish_reason "length"
    "garbage_short",
    "garbage_long",
    "empty",
    "disconnect",
    "loop",  # repeats itself until max_tokens ("length"); without max_tokens it runs for hang_s
    "context",  # HTTP 400 context_length_exceeded, whatever the size
    "trickle",  # blank lines (SSE comments when streaming) every trickle_s for hang_s, then the answer
    "think_closed",  # <think>…</think> before the answer
    "think_close_only",  # …</think> before the answer (the template opened the block)
    "think_unclosed",  # <think>… and no answer
    "reasoning_field",  # the thinking in message.reasoning_content, the answer in content
    "preamble",  # "好的，以下是…：" before the answer
    "fenced",  # the answer in a ``` code fence
    "echo",  # the user text back, unchanged
    "nonsense",  # same script, same length, unrelated characters
    "english",  # an English answer to anything
)
NONSENSE = "天地玄黄宇宙洪荒日月盈昃辰宿列张寒来暑往秋收冬藏闰余成岁律吕调阳云腾致雨露结为霜金生丽水玉出昆冈"
PROOFREAD_MODEL = "fake-proofread"
SUMMARY_MODEL = "fake-summary"

_CJK = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_HALF_TO_FULL = str.maketrans({",": "，", "?": "？", "!": "！", ";": "；", ":": "："})
_TERMINATORS = "。！？.!?…；;”’\"'）)」』】"


@dataclass
class FakeRequest:
    """One chat request as the server saw it (times are time.monotonic())."""

    model: str
    system: str
    user: str
    kind: str  # "proofread" or "summary"
    outcome: str  # the scripted step applied ("ok" by default)
    started: float
    ended: float | None = None
    status: int | None = None
    api_key: str = ""  # the bearer token the client sent
    max_tokens: int | None = None  # max_tokens or max_completion_tokens, as sent
    stream: bool = False
    served: float | None = None  # when the server began working on it (after its queue)
    stream_usage: bool = False  # stream_options.include_usage: a last chunk carries the usage
    usage: dict[str, int] | None = None  # what the answer said it cost, when one was sent


def fake_tokens(text: str) -> int:
    """The stand-in's tokenizer: 1 token per CJK character, 1 per 4 other characters."""
    wide = len(re.findall(_CJK, text))
    return wide + -(-(len(text) - wide) // 4)


def cut_to_tokens(text: str, tokens: int) -> str:
    """The longest prefix of `text` costing at most `tokens`."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fake_tokens(text[:middle]) <= tokens:
            low = middle
        else:
            high = middle - 1
    return text[:low]


@dataclass
class _Plan:
    """What to answer: an error (status + body) or text with a finish reason."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    text: str = ""
    finish: str = "stop"
    reasoning: str | None = None
    trickle: bool = False
    disconnect: bool = False


def proofread_edit(text: str) -> str:
    """What the fake 'proofreader' does: tidy spaces, full-width CJK punctuation, final stop."""
    edited = re.sub(r"[ \t\u3000]+", " ", text)
    edited = re.sub(r" *\n *", "\n", edited).strip()
    edited = re.sub(rf"(?<={_CJK})[,?!;:]", lambda m: m.group().translate(_HALF_TO_FULL), edited)
    if edited and edited[-1] not in _TERMINATORS:
        edited += "。" if re.search(_CJK, edited) else "."
    return edited


def summary_of(text: str, bullets: int = 3) -> str:
    """What the fake 'summariser' does: the first sentences as a bullet list."""
    sentences = [s.strip().removeprefix("- ").strip() for s in split_sentences(text) if s.strip()]
    sentences = [s for s in sentences if s]
    return "\n".join(f"- {sentence}" for sentence in sentences[:bullets]) or "- (empty)"


def brief_answers(record: FakeRequest) -> str:
    """A responder for a text of a few sentences: a one-bullet summary. The default three
    bullets would be the whole text, which the summary guard rightly refuses."""
    return summary_of(record.user, bullets=1) if record.kind == "summary" else proofread_edit(record.user)


class FakeLLM(BackgroundServer):
    """An OpenAI-compatible chat server on a background thread; see the module docstring."""

    thread_name = "fake-llm"
    runner_options = {"handler_cancellation": True}  # noqa: RUF012 - a client that hangs up ends its handler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, hang_s: float = 30.0) -> None:
        super().__init__(host, port)
        self.hang_s = hang_s  # how long a "timeout" step stalls (until the client gives up)
        self.latency: float | tuple[float, float] = 0.0
        # Optional override of the answer text: responder(request) -> str.
        self.responder: Callable[[FakeRequest], str] | None = None
        self.required_key: str | None = None  # when set, requests with another key get 401
        self.serial = False
        self.context_tokens: int | None = None
        self.rate_limit_every = 0
        self.retry_after: float | None = None
        self.error_style = "openai"
        self.strict_models = False
        self.served_model: str | None = None
        self.trickle_s = 0.05
        self.models = [PROOFREAD_MODEL, SUMMARY_MODEL]
        self.listed_context: int | None = None  # stated as max_model_len in /v1/models (as vLLM does)
        self._lock = threading.Lock()
        self._serial_lock: asyncio.Lock | None = None  # made on the server's loop
        self._calls = 0
        self._script: deque[str] = deque()
        self._requests: list[FakeRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._ids = itertools.count(1)
        self._random = random.Random(1234)  # seeded: random latencies repeat run to run

    # -- controls ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def script(self, *steps: str) -> None:
        """Queue outcomes for the next requests, consumed in arrival order."""
        for step in steps:
            if step not in STEPS and not re.fullmatch(r"[1-5]\d\d", step):
                raise ValueError(f"unknown fake LLM step {step!r}; use one of {STEPS} or an HTTP status")
        with self._lock:
            self._script.extend(steps)

    def reset(self) -> None:
        """Forget scripts, records, latency, responder and required key (between tests)."""
        with self._lock:
            self._script.clear()
            self._requests = []
            # Requests of an earlier test may still be hanging; they count until they end.
            self._max_in_flight = self._in_flight
            self._calls = 0
        self.latency = 0.0
        self.responder = None
        self.required_key = None
        self.serial = False
        self.context_tokens = None
        self.rate_limit_every = 0
        self.retry_after = None
        self.error_style = "openai"
        self.strict_models = False
        self.served_model = None
        self.trickle_s = 0.05
        self.models = [PROOFREAD_MODEL, SUMMARY_MODEL]
        self.listed_context = None

    @property
    def requests(self) -> list[FakeRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def max_in_flight(self) -> int:
        return self._max_in_flight

    @property
    def pending_script(self) -> list[str]:
        with self._lock:
            return list(self._script)

    def settings(self, **overrides: Any) -> LLMSettings:
        """LLMSettings pointing at this server, with test-sized timeouts and backoff."""
        values: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key": None,
            "proofread_model": PROOFREAD_MODEL,
            "summary_model": SUMMARY_MODEL,
            "timeout_s": 2.0,
            "video_timeout_s": 60.0,
            "max_retries": 2,
            "retry_base_s": 0.01,
            "retry_max_s": 1.0,
            "concurrency_recover_s": 1.0,
        }
        values.update(overrides)
        return LLMSettings(**values)

    # -- serving ---------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)

    # -- handlers ---------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        api_key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self._refuses(api_key):
            return self._key_refused(api_key)
        data: list[dict[str, Any]] = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.models]
        if self.listed_context is not None:
            for entry in data:
                entry["max_model_len"] = self.listed_context
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body.get("messages", [])
        system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        model = str(body.get("model", ""))
        kind = _kind(model, system)
        with self._lock:
            self._calls += 1
            limited = self.rate_limit_every > 0 and self._calls % self.rate_limit_every == 0
            outcome = "429" if limited else self._script.popleft() if self._script else "ok"
            record = FakeRequest(model, system, user, kind, outcome, 0.0)
            record.started = time.monotonic()
            record.api_key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            record.max_tokens = int(limit) if limit is not None else None
            record.stream = bool(body.get("stream"))
            record.stream_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._requests.append(record)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            if self.serial:
                # One at a time, like llama.cpp: a request whose client left still runs.
                plan = await asyncio.shield(self._serially(record))
            else:
                plan = await self._plan(record)
            response = await self._respond(request, record, plan)
            record.status = response.status
            return response
        finally:
            with self._lock:
                self._in_flight -= 1
            record.ended = time.monotonic()

    async def _serially(self, record: FakeRequest) -> _Plan:
        if self._serial_lock is None:
            self._serial_lock = asyncio.Lock()
        async with self._serial_lock:
            return await self._plan(record)

    async def _plan(self, record: FakeRequest) -> _Plan:
        """Decide the answer, spending the 'generation' time (latency, stalls) on the way."""
        record.served = time.monotonic()
        await self.pause(self._latency())
        if self._refuses(record.api_key):
            return _Plan(401, self._key_refused_body(record.api_key))
        if self.strict_models and record.model not in self.models:
            message = f"The model `{record.model}` does not exist or you do not have access to it."
            return _Plan(404, self._error_body(message, "invalid_request_error", "model_not_found"))
        outcome = record.outcome
        if outcome.isdigit():
            return self._status(int(outcome))
        prompt = fake_tokens(record.system) + fake_tokens(record.user) + 8
        if outcome == "context" or (
            self.context_tokens is not None and prompt + (record.max_tokens or 0) > self.context_tokens
        ):
            return self._context_error(prompt, record.max_tokens)
        budget = record.max_tokens
        if budget is None and self.context_tokens is not None:
            budget = self.context_tokens - prompt  # what llama.cpp allows without max_tokens
        if outcome == "timeout" or (outcome == "loop" and record.max_tokens is None):
            await self.pause(self.hang_s)  # a stall, or a loop filling the whole context
            return self._status(504)  # only reached if the client waited longer than hang_s
        if outcome == "disconnect":
            return _Plan(disconnect=True)
        plan = _Plan(text=self.responder(record) if self.responder else self._default_answer(record))
        self._shape(plan, record)
        if budget is not None and fake_tokens(plan.text) > budget:
            plan.text, plan.finish = cut_to_tokens(plan.text, budget), "length"
        return plan

    def _shape(self, plan: _Plan, record: FakeRequest) -> None:
        """Apply a scripted misbehaviour to a good answer."""
        outcome, text = record.outcome, plan.text
        if outcome == "truncated":
            plan.text, plan.finish = text[: len(text) // 2], "length"
        elif outcome == "garbage_short":
            plan.text = text[: max(1, len(text) // 20)]
        elif outcome == "garbage_long":
            plan.text = text * 3
        elif outcome == "empty":
            plan.text = ""
        elif outcome == "loop":
            plan.text = "我们来看看这个问题。" * (len(text) * 4 + 100)
        elif outcome == "trickle":
            plan.trickle = True
        elif outcome == "think_closed":
            plan.text = f"<think>\n用户要我处理这段文字，我先想一想。\n</think>\n\n{text}"
        elif outcome == "think_close_only":
            plan.text = f"好的，用户要我处理这段文字，我先想一想……\n</think>\n\n{text}"
        elif outcome == "think_unclosed":
            plan.text = "<think>\n用户要我处理这段文字，我先想一想，这里有很多地方需要考虑"
        elif outcome == "reasoning_field":
            plan.reasoning = "用户要我处理这段文字，我先想一想。"
        elif outcome == "preamble":
            what = "总结" if record.kind == "summary" else "校对后的文本"
            plan.text = f"好的，以下是{what}：\n\n{text}"
        elif outcome == "fenced":
            plan.text = f"```text\n{text}\n```"
        elif outcome == "echo":
            plan.text = record.user
        elif outcome == "nonsense":
            rng = random.Random(len(text))  # unrelated characters, not a repeated pattern
            plan.text = "".join(rng.choice(NONSENSE) for _ in range(len(text)))
        elif outcome == "english":
            plan.text = "- This video talks about many interesting things.\n- The speaker explains them."

    async def _respond(self, request: web.Request, record: FakeRequest, plan: _Plan) -> web.StreamResponse:
        if plan.disconnect:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=499)
        if plan.body is not None:
            return web.json_response(plan.body, status=plan.status, headers=plan.headers)
        if record.stream:
            return await self._stream(request, record, plan)
        completion = _completion(next(self._ids), record, plan, self.served_model)
        if not plan.trickle:
            return web.json_response(completion)
        # Blank lines while "busy" (as DeepSeek does), then the answer: each line resets a read timeout.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        deadline = time.monotonic() + self.hang_s
        while time.monotonic() < deadline:
            await response.write(b"\n")
            await self.pause(self.trickle_s)
        await response.write(json.dumps(completion).encode())
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, record: FakeRequest, plan: _Plan) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        if plan.trickle:
            deadline = time.monotonic() + self.hang_s
            while time.monotonic() < deadline:
                await response.write(b": keep-alive\n\n")
                await self.pause(self.trickle_s)
        number = next(self._ids)
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if plan.reasoning:
            deltas.append({"reasoning_content": plan.reasoning})
        deltas += [{"content": plan.text[i : i + 16]} for i in range(0, len(plan.text), 16)]
        for index, delta in enumerate(deltas):
            finish = plan.finish if index == len(deltas) - 1 else None
            chunk = _chunk(number, record, delta, finish, self.served_model)
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if record.stream_usage:  # as OpenAI does: one more chunk, no choices, the usage
            record.usage = _usage(record, plan.text)
            last = {**_chunk(number, record, {}, None, self.served_model), "choices": [], "usage": record.usage}
            await response.write(f"data: {json.dumps(last)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _status(self, status: int) -> _Plan:
        kind = {429: "rate_limit_error", 401: "authentication_error"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        headers = {"Retry-After": f"{self.retry_after:g}"} if status == 429 and self.retry_after is not None else None
        return _Plan(status, self._error_body(f"fake LLM scripted HTTP {status}", kind, str(status)), headers)

    def _context_error(self, prompt: int, max_tokens: int | None) -> _Plan:
        # llama-cpp-python's (and OpenAI's) wording: clients may read the window from it.
        context = self.context_tokens or prompt
        message = (
            f"This model's maximum context length is {context} tokens. However, you requested "
            f"{prompt + (max_tokens or 0)} tokens ({prompt} in the messages, {max_tokens} in the completion). "
            "Please reduce the length of the messages or completion."
        )
        return _Plan(400, self._error_body(message, "invalid_request_error", "context_length_exceeded"))

    def _error_body(self, message: str, kind: str, code: str) -> dict[str, Any]:
        if self.error_style == "fastapi":
            return {"detail": message}
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def _key_refused_body(self, api_key: str) -> dict[str, Any]:
        if self.error_style == "fastapi":
            return {"detail": "Invalid API key"}  # llama-cpp-python's words
        # Echoes the key, as some endpoints do: a client must never print this message as it is.
        return self._error_body(f"Incorrect API key provided: {api_key}", "invalid_request_error", "invalid_api_key")

    def _key_refused(self, api_key: str) -> web.Response:
        return web.json_response(self._key_refused_body(api_key), status=401)

    def _refuses(self, api_key: str) -> bool:
        return self.required_key is not None and api_key != self.required_key

    def _default_answer(self, record: FakeRequest) -> str:
        return summary_of(record.user) if record.kind == "summary" else proofread_edit(record.user)

    def _latency(self) -> float:
        latency = self.latency
        if isinstance(latency, tuple):
            with self._lock:
                return self._random.uniform(*latency)
        return latency


def _kind(model: str, system: str) -> str:
    """Proofread or summary: by the fake's model names, else by the system prompt."""
    if model in (PROOFREAD_MODEL, SUMMARY_MODEL):
        return "summary" if model == SUMMARY_MODEL else "proofread"
    lowered = system.lower()
    if "proofread" in lowered or "校对" in system:
        return "proofread"
    return "summary" if "summar" in lowered or "总结" in system or "摘要" in system else "proofread"


def _usage(record: FakeRequest, text: str) -> dict[str, int]:
    prompt_tokens = fake_tokens(record.system) + fake_tokens(record.user) + 8
    completion_tokens = fake_tokens(text)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _completion(number: int, record: FakeRequest, plan: _Plan, served_model: str | None) -> dict[str, Any]:
    record.usage = _usage(record, plan.text)
    message: dict[str, Any] = {"role": "assistant", "content": plan.text, "refusal": None}
    if plan.reasoning:
        message["reasoning_content"] = plan.reasoning
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": served_model or record.model,
        "system_fingerprint": "fake",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": plan.finish}],
        "usage": record.usage,
    }


def _chunk(
    number: int, record: FakeRequest, delta: dict[str, Any], finish: str | None, served_model: str | None
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": served_model or record.model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    """One fake LLM server for the whole session (prefer `fake_llm`, which resets it)."""
    with FakeLLM() as server:
        yield server


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The session's fake LLM server, reset for this test."""
    fake_llm_server.reset()
    return fake_llm_server


@pytest.fixture
def client_for(fake_llm: FakeLLM) -> Callable[..., Any]:
    """`async with client_for(**overrides) as llm`: an LLMClient against the fake, test-sized settings."""

    @contextlib.asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[LLMClient]:
        client = LLMClient(fake_llm.settings(**overrides))
        try:
            yield client
        finally:
            await client.aclose()

    return build


def main() -> None:
    """Serve the fake LLM in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeLLM(args.host, args.port)
    server.latency = args.latency
    with server:
        print(f"fake LLM at {server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
