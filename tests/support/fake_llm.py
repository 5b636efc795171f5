"""Pytest plugin: a local OpenAI-compatible chat server with scripted latency and failures.

`FakeLLM` serves `POST /v1/chat/completions` (and `GET /v1/models`) with aiohttp on
127.0.0.1 in a background thread, so the real `openai` client — in this process or in
a Ray worker — talks HTTP to it. Answers are deterministic: proofread requests get the
user text back with light edits (length ratio ~1), summary requests a short "- " list.

    fake.latency = 0.05 or (0.02, 0.08)       # seconds per request, fixed or random
    fake.script("429", "500", "timeout", "truncated", "garbage_short")
    fake.required_key = "sk-right"             # any other bearer token gets 401
    fake.requests, fake.max_in_flight          # what arrived, peak concurrency

Run standalone for manual checks: `python -m tests.support.fake_llm --port 8001`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from actors.llm.settings import LLMSettings
from actors.util.textsplit import split_sentences
from tests.support.aioserver import BackgroundServer

# Scripted outcomes; a bare three-digit string ("503") answers that HTTP status.
STEPS = ("ok", "timeout", "truncated", "garbage_short", "garbage_long", "empty", "disconnect")
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
    sentences = [s.strip() for s in split_sentences(text) if s.strip()]
    return "\n".join(f"- {sentence}" for sentence in sentences[:bullets]) or "- (empty)"


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
        self._lock = threading.Lock()
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
        self.latency = 0.0
        self.responder = None
        self.required_key = None

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
            "max_retries": 2,
            "retry_base_s": 0.01,
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
            return _key_refused(api_key)
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in (PROOFREAD_MODEL, SUMMARY_MODEL)]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body.get("messages", [])
        system = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        model = str(body.get("model", ""))
        kind = _kind(model, system)
        with self._lock:
            outcome = self._script.popleft() if self._script else "ok"
            record = FakeRequest(model, system, user, kind, outcome, 0.0)
            record.started = time.monotonic()
            record.api_key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            self._requests.append(record)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            response = await self._answer(request, record)
            record.status = response.status
            return response
        finally:
            with self._lock:
                self._in_flight -= 1
            record.ended = time.monotonic()

    async def _answer(self, request: web.Request, record: FakeRequest) -> web.StreamResponse:
        await self.pause(self._latency())
        if self._refuses(record.api_key):
            return _key_refused(record.api_key)
        outcome = record.outcome
        if outcome.isdigit():
            return _error(int(outcome))
        if outcome == "timeout":
            await self.pause(self.hang_s)
            return _error(504)  # only reached if the client waited longer than hang_s
        if outcome == "disconnect":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=499)
        text = self.responder(record) if self.responder else self._default_answer(record)
        finish = "stop"
        if outcome == "truncated":
            text, finish = text[: len(text) // 2], "length"
        elif outcome == "garbage_short":
            text = text[: max(1, len(text) // 20)]
        elif outcome == "garbage_long":
            text = text * 3
        elif outcome == "empty":
            text = ""
        return web.json_response(_completion(next(self._ids), record, text, finish))

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


def _completion(number: int, record: FakeRequest, text: str, finish: str) -> dict[str, Any]:
    prompt_tokens = len(record.system) + len(record.user)  # ~1 token per CJK char; good enough
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": record.model,
        "system_fingerprint": "fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text),
            "total_tokens": prompt_tokens + len(text),
        },
    }


def _error(status: int) -> web.Response:
    kind = {429: "rate_limit_error", 401: "authentication_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error"
    )
    message = f"fake LLM scripted HTTP {status}"
    body = {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return web.json_response(body, status=status)


def _key_refused(api_key: str) -> web.Response:
    # Echoes the key, as some endpoints do: a client must never print this message as it is.
    message = f"Incorrect API key provided: {api_key}"
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    return web.json_response(body, status=401)


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
