"""Summarise a transcript, in parts when it is too long for the model (map-reduce).

A text that fits the context (with the summary's output budget) is summarised in one
request. One that does not, or whose request the server refuses as too long, or whose
summary is cut at the output limit, is cut into parts that fit; each part is summarised
and the parts' summaries are combined (again in parts if they are still too long), at
most MAX_LEVELS deep. Every summary must pass the guards (`guards.summary_problem`):
a summary that fails them is not sent; the step fails with the reason instead.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field

from actors.domain.errors import LLMError
from actors.domain.video import VideoInfo
from actors.llm.answers import clean_answer
from actors.llm.budget import Budget, Deadline
from actors.llm.endpoint import ContextTooLong, Endpoint, StepFailed, Usage
from actors.llm.guards import SUMMARY_MAX_SHARE, summary_problem
from actors.llm.prompts import (
    COMBINE_INSTRUCTIONS,
    PART_SUMMARY_INSTRUCTIONS,
    SUMMARY_INSTRUCTIONS,
    system_message,
)
from actors.util.textsplit import pack

log = logging.getLogger(__name__)

MAX_LEVELS = 3  # parts of parts of parts: enough for 200 000 characters in a 4 096-token context
MIN_PART_CHARS = 200  # a shorter text that still cannot be summarised is not cut further
_MIN_SUMMARY_TOKENS = 128


class SummaryRejected(LLMError):
    """The model's summary did not pass the guards (or could not be had in parts)."""

    code = "summary_rejected"


@dataclass
class _Tally:
    usage: Usage = field(default_factory=Usage)
    parts: int = 0


@dataclass(frozen=True)
class SummaryResult:
    text: str
    usage: Usage
    parts: int  # 1: summarised in one request


class Summarizer:
    """Summarises with `endpoint`'s summary model."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._settings = endpoint.settings

    async def run(self, text: str, video: VideoInfo, deadline: Deadline) -> SummaryResult:
        """The summary of `text`; raises LLMError (SummaryRejected for nonsense) when there is none."""
        tally = _Tally()
        try:
            summary = await self._summarise(text, video, deadline, tally, level=0, kind="whole", original=text)
        except LLMError as error:
            raise StepFailed(error.message, error.code, tally.usage) from error
        return SummaryResult(summary, tally.usage, max(1, tally.parts))

    def _budget(self) -> Budget:
        return self._endpoint.budget(self._settings.summary_model)

    def _max_tokens(self, text: str) -> int:
        """The summary's output budget: no more than a summary of this text can be worth."""
        wanted = math.ceil(self._budget().tokens(text) * SUMMARY_MAX_SHARE)
        return min(self._settings.summary_max_tokens, max(_MIN_SUMMARY_TOKENS, wanted))

    async def _summarise(
        self,
        text: str,
        video: VideoInfo,
        deadline: Deadline,
        tally: _Tally,
        *,
        level: int,
        kind: str,
        original: str,
    ) -> str:
        """`kind`: whole (the transcript), part (of it) or combine (the parts' summaries)."""
        instructions = {"whole": SUMMARY_INSTRUCTIONS, "part": PART_SUMMARY_INSTRUCTIONS}.get(
            kind, COMBINE_INSTRUCTIONS
        )
        system = system_message(instructions, video)
        label = "summary" if kind == "whole" else f"summary ({kind}, level {level})"
        max_tokens = self._max_tokens(text)
        why_parts = "it is longer than the model's context"
        if self._budget().fits(system, text, max_tokens):
            try:
                answer = await self._endpoint.complete(
                    self._settings.summary_model, system, text, max_tokens=max_tokens, label=label, deadline=deadline
                )
            except ContextTooLong:
                why_parts = "the server found it too long for the model's context"
            else:
                tally.usage += answer.usage
                if not answer.cut:
                    return await self._checked(text, clean_answer(answer.text, text), kind, original, label)
                why_parts = f"its summary was cut at the output limit ({max_tokens} tokens)"
        if level >= MAX_LEVELS or len(text) < MIN_PART_CHARS:
            raise SummaryRejected(f"{label}: {why_parts}, and it cannot be cut into smaller parts")
        parts = self._parts_of(text, system)
        log.info("%s: %s; summarising it in %d parts", label, why_parts, len(parts))
        tally.parts += len(parts)
        # Parts of the transcript are summarised as parts; parts of the parts' summaries are combined.
        part_kind = "combine" if kind == "combine" else "part"
        try:
            # A part that fails fails the summary: the others stop rather than keep the server busy.
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(
                        self._summarise(
                            part, video, deadline, tally, level=level + 1, kind=part_kind, original=original
                        )
                    )
                    for part in parts
                ]
        except* LLMError as failed:
            raise failed.exceptions[0] from None
        joined = "\n\n".join(task.result() for task in tasks)
        return await self._summarise(joined, video, deadline, tally, level=level + 1, kind="combine", original=original)

    def _parts_of(self, text: str, system: str) -> list[str]:
        """Parts of `text` that fit the context with their own summary (halves when it is unknown)."""
        budget = self._budget()
        room = budget.room(system, 0)
        half = math.ceil(len(text) / 2)
        if room is None:
            return _pieces(text, half)
        # A part of p tokens is asked for a summary of up to max(128, share * p) tokens.
        tokens = room / (1 + SUMMARY_MAX_SHARE)
        if tokens * SUMMARY_MAX_SHARE < _MIN_SUMMARY_TOKENS:
            tokens = room - _MIN_SUMMARY_TOKENS
        return _pieces(text, min(half, max(1, int(tokens / budget.tokens_per_char))))

    async def _checked(self, text: str, summary: str, kind: str, original: str, label: str) -> str:
        # A combined summary answers for the whole transcript: checked against it, and it may
        # well repeat the parts' summaries it was made from.
        source = original if kind == "combine" else text
        # In a thread: on a 200 000-character transcript the checks take most of a second.
        problem = await asyncio.to_thread(summary_problem, source, summary)
        if problem is not None:
            raise SummaryRejected(f"{label} {problem}")
        return summary


def _pieces(text: str, size: int) -> list[str]:
    return [part for part in pack(text, max(MIN_PART_CHARS // 2, size)) if part.strip()]
