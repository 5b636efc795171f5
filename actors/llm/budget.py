"""Token arithmetic without a tokenizer: what a text costs, what an answer may cost, what fits.

Estimates err high on purpose: an overestimate only makes chunks smaller and output
limits looser, an underestimate gets a context-length error or a cut answer (which the
callers handle by splitting, so it costs time, not text).
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass

# Han, kana, Hangul and full-width forms: about `tokens_per_char` tokens each.
_WIDE = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff00-\uffef]")
# BPE tokenizers give English and most other scripts 3-5 characters a token; 0.4 leaves room.
_TOKENS_PER_OTHER_CHAR = 0.4
# Chat templates add role markers and separators around each message.
_TEMPLATE_TOKENS = 32
# Slack for the answer beyond its expected size: a final newline, an end-of-turn token.
_ANSWER_SLACK_TOKENS = 64
# Share of the context our requests may fill: the estimate is not the tokenizer.
_CONTEXT_USE = 0.9
# Learnt from errors such as llama.cpp's, vLLM's and OpenAI's context-length 400s.
_CONTEXT_IN_MESSAGE = re.compile(r"(?:maximum context length|context window)\D{0,20}(\d{3,7})", re.IGNORECASE)


def estimate_tokens(text: str, tokens_per_char: float) -> int:
    """Tokens `text` probably costs (rounded up)."""
    wide = len(_WIDE.findall(text))
    return math.ceil(wide * tokens_per_char + (len(text) - wide) * _TOKENS_PER_OTHER_CHAR)


def context_from_error(message: str) -> int | None:
    """The context window a context-length error message states, if it states one."""
    match = _CONTEXT_IN_MESSAGE.search(message)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Budget:
    """Sizes of requests for one model: `context` is None while unknown (no limit assumed)."""

    tokens_per_char: float
    context: int | None = None

    def tokens(self, text: str) -> int:
        return estimate_tokens(text, self.tokens_per_char)

    def proofread_max_tokens(self, chunk: str, ratio_max: float) -> int:
        """Output limit of a proofread: the longest plausible answer, no more."""
        return math.ceil(self.tokens(chunk) * ratio_max) + _ANSWER_SLACK_TOKENS

    def room(self, system: str, max_tokens: int) -> int | None:
        """Tokens left for the user message beside `system` and an answer of `max_tokens`."""
        if self.context is None:
            return None
        return int(self.context * _CONTEXT_USE) - self.tokens(system) - _TEMPLATE_TOKENS - max_tokens

    def fits(self, system: str, user: str, max_tokens: int) -> bool:
        room = self.room(system, max_tokens)
        return room is None or self.tokens(user) <= room

    def proofread_chunk_chars(self, system: str, chunk_chars: int, ratio_max: float) -> int:
        """Largest proofread chunk (characters) whose prompt and answer fit the context."""
        room = self.room(system, _ANSWER_SLACK_TOKENS)
        if room is None:
            return chunk_chars
        # A chunk of n wide characters costs n*t tokens in and up to n*t*ratio_max out.
        fitting = int(room / (self.tokens_per_char * (1 + ratio_max)))
        return max(1, min(chunk_chars, fitting))

    def input_chars(self, system: str, max_tokens: int) -> int | None:
        """Largest user message (characters of dense text) beside `system` and `max_tokens`."""
        room = self.room(system, max_tokens)
        return None if room is None else max(1, int(room / self.tokens_per_char))


class Deadline:
    """A point in time (monotonic clock) by which some work must be over."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.remaining() <= 0
