"""Reading an error answer of an OpenAI-compatible server: its reason, what kind it is.

Servers put the reason in different places: OpenAI and vLLM in `error.message`,
FastAPI-based servers (llama-cpp-python) in `detail`, proxies in a plain-text body.
Some echo the API key in the reason ("Incorrect API key provided: sk-..."), so every
reason is masked before anyone logs or stores it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import openai

# Statuses worth another try: timeouts and conflicts reported by the server, rate limits, 5xx.
RETRYABLE_STATUS = frozenset({408, 409, 429})
_REASON_KEYS = ("message", "detail", "error", "msg", "reason")
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_CONTEXT_WORDS = re.compile(
    r"context length|context window|maximum context|too many tokens|prompt is too long|"
    r"exceeds? the (?:model's )?(?:context|max)|input is too long|reduce the length",
    re.IGNORECASE,
)
_KEY_LIKE = re.compile(r"\b(sk-|key-|Bearer\s+)([A-Za-z0-9_\-.]{4,})")
_MAX_RETRY_AFTER_S = 3600.0  # a date or a day is not a wait we honour


def server_reason(error: openai.APIStatusError, api_key: str = "", limit: int = 300) -> str:
    """The server's own words for `error`, short, with API keys masked."""
    reason = _reason_in(error.body) or error.message
    code = _code_of(error)
    if code and code not in reason:
        reason = f"{reason} ({code})"
    return _short(mask_secrets(reason, api_key), limit)


def mask_secrets(text: str, api_key: str = "") -> str:
    """`text` with `api_key` and anything that looks like a key shown as its first 3 characters."""
    if len(api_key) >= 4:
        text = text.replace(api_key, api_key[:3] + "…")
    return _KEY_LIKE.sub(lambda m: m.group(1) + "…", text)


def is_context_error(error: openai.APIStatusError) -> bool:
    """The prompt (with the requested output) does not fit the model's context."""
    if error.status_code not in (400, 413, 422):
        return False
    return _code_of(error) in _CONTEXT_CODES or bool(_CONTEXT_WORDS.search(_reason_in(error.body) or error.message))


def wants_max_completion_tokens(error: openai.APIStatusError) -> bool:
    """OpenAI's reasoning models refuse `max_tokens` and ask for `max_completion_tokens`."""
    return error.status_code == 400 and "max_completion_tokens" in (_reason_in(error.body) or error.message)


def is_retryable(error: openai.APIStatusError) -> bool:
    return error.status_code in RETRYABLE_STATUS or error.status_code >= 500


def retry_after(error: openai.APIStatusError) -> float | None:
    """Seconds from the Retry-After header (delta form), or retry-after-ms."""
    headers = error.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            value = float(headers.get(name, ""))
        except ValueError:
            continue
        if 0 <= value * scale <= _MAX_RETRY_AFTER_S:
            return value * scale
    return None


def _reason_in(body: object) -> str:
    if isinstance(body, str):
        return " ".join(body.split())
    if isinstance(body, Mapping):
        for key in _REASON_KEYS:
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())
            if isinstance(value, Mapping):
                nested = _reason_in(value)
                if nested:
                    return nested
            if isinstance(value, list) and value and isinstance(value[0], Mapping):  # FastAPI's 422 details
                nested = _reason_in(value[0])
                if nested:
                    return nested
    return ""


def _code_of(error: openai.APIStatusError) -> str:
    code = getattr(error, "code", None)
    if not code and isinstance(error.body, Mapping):
        code = error.body.get("code")
    return str(code) if code else ""


def _short(message: str, limit: int) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 1] + "…"
