"""Proofread a transcript chunk by chunk; a chunk that cannot be proofread keeps its text.

Chunks are cut at paragraph, then sentence boundaries, small enough for the model's
context, and sent concurrently (the endpoint's shared limit paces them). Each answer has
an output limit sized from its chunk; an answer cut at that limit, or a chunk too long
for the context, is split in two and both halves redone: a truncated answer is never
kept. A chunk that fails for good (refused, retries spent, deadline passed) or whose
answer is not a proofread of it keeps its original text, with a warning; the others
keep theirs. Only when no chunk at all could be proofread is the step a failure.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.domain.errors import LLMError
from actors.domain.video import VideoInfo
from actors.llm.answers import clean_answer
from actors.llm.budget import Deadline
from actors.llm.endpoint import ContextTooLong, Endpoint, StepFailed, Usage
from actors.llm.guards import proofread_problem
from actors.llm.prompts import PROOFREAD_INSTRUCTIONS, system_message
from actors.util.textsplit import pack

log = logging.getLogger(__name__)

MAX_SPLITS = 2  # a chunk is halved at most this often (into at most 4 pieces): a looping model loops on halves too
MIN_SPLIT_CHARS = 60  # shorter pieces are not split further


@dataclass(frozen=True)
class ProofreadResult:
    """Proofread text and the warnings worth recording on the task."""

    text: str
    warnings: list[str]
    usage: Usage = field(default_factory=Usage)
    chunks: int = 0
    kept: int = 0  # chunks (or pieces of one) that kept their original text


@dataclass
class _Piece:
    text: str
    warnings: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    done: int = 0  # proofread pieces
    kept: int = 0  # pieces left as they were


def chunk_text(text: str, chunk_chars: int) -> list[str]:
    """Pieces of at most `chunk_chars` characters, cut at paragraph/sentence boundaries."""
    return pack(text, chunk_chars)


class Proofreader:
    """Proofreads with `endpoint`'s proofread model."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._settings = endpoint.settings

    async def run(
        self,
        text: str,
        video: VideoInfo,
        deadline: Deadline,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ProofreadResult:
        """Proofread `text`; `on_progress(done, total)` after each chunk."""
        settings = self._settings
        system = system_message(PROOFREAD_INSTRUCTIONS, video)
        budget = self._endpoint.budget(settings.proofread_model)
        chunks = chunk_text(text, budget.proofread_chunk_chars(system, settings.chunk_chars, settings.ratio_max))
        started = time.monotonic()
        done = 0

        async def one(index: int, chunk: str) -> _Piece:
            nonlocal done
            label = f"proofread chunk {index + 1}/{len(chunks)}"
            piece = await self._chunk(chunk, label, system, deadline, 0)
            if len(piece.warnings) > 1:  # a split chunk: one warning for it, not one per part
                first = piece.warnings[0]
                piece.warnings = [f"{label}: {len(piece.warnings)} parts kept their original text; first: {first}"]
            done += 1
            if on_progress is not None:
                on_progress(done, len(chunks))
            return piece

        pieces = await asyncio.gather(*(one(i, chunk) for i, chunk in enumerate(chunks)))
        merged = _merge(pieces)
        log.info(
            "proofread %s/%s: %d chars in %d chunks, %.1fs, %d kept their text",
            video.platform,
            video.video_id,
            len(text),
            len(chunks),
            time.monotonic() - started,
            merged.kept,
        )
        if merged.done == 0 and merged.kept:
            # Nothing was proofread: the step failed (the raw transcript goes out as such).
            raise StepFailed(f"no part of the text could be proofread: {merged.warnings[0]}", usage=merged.usage)
        return ProofreadResult(merged.text, merged.warnings, merged.usage, len(chunks), merged.kept)

    async def _chunk(self, chunk: str, label: str, system: str, deadline: Deadline, splits: int) -> _Piece:
        body = chunk.strip()
        if not body:
            return _Piece(chunk)
        settings = self._settings
        model = settings.proofread_model
        max_tokens = self._endpoint.budget(model).proofread_max_tokens(body, settings.ratio_max)
        if not self._endpoint.budget(model).fits(system, body, max_tokens) and self._can_split(body, splits):
            return await self._split(chunk, label, system, deadline, splits)
        try:
            answer = await self._endpoint.complete(
                model, system, body, max_tokens=max_tokens, label=label, deadline=deadline
            )
        except ContextTooLong as e:
            if self._can_split(body, splits):
                return await self._split(chunk, label, system, deadline, splits)
            return _kept(chunk, f"{e.message}; kept the original text")
        except LLMError as e:
            return _kept(chunk, f"{e.message}; kept the original text")
        if answer.cut:
            if self._can_split(body, splits):
                log.info("%s: cut at the output limit (%d tokens); splitting it", label, max_tokens)
                redone = await self._split(chunk, label, system, deadline, splits)
                redone.usage += answer.usage
                return redone
            return _kept(chunk, f"{label} was cut at the output limit; kept the original text", answer.usage)
        fixed = clean_answer(answer.text, body)
        problem = proofread_problem(
            body, fixed, ratio_min=settings.ratio_min, ratio_max=settings.ratio_max, min_overlap=settings.min_overlap
        )
        if problem is not None:
            return _kept(chunk, f"{label} {problem}; kept the original text", answer.usage)
        # Keep the whitespace around the chunk so paragraph breaks between chunks survive.
        lead = chunk[: len(chunk) - len(chunk.lstrip())]
        trail = chunk[len(chunk.rstrip()) :]
        return _Piece(lead + fixed + trail, usage=answer.usage, done=1)

    def _can_split(self, body: str, splits: int) -> bool:
        return splits < MAX_SPLITS and len(body) >= MIN_SPLIT_CHARS

    async def _split(self, chunk: str, label: str, system: str, deadline: Deadline, splits: int) -> _Piece:
        halves = _halves(chunk)
        pieces = await asyncio.gather(
            *(
                self._chunk(half, f"{label} part {i + 1}/{len(halves)}", system, deadline, splits + 1)
                for i, half in enumerate(halves)
            )
        )
        return _merge(pieces)


def _halves(chunk: str) -> list[str]:
    """Two pieces of `chunk` cut at the paragraph or sentence boundary nearest its middle."""
    pieces = pack(chunk, math.ceil(len(chunk) / 2))
    if len(pieces) <= 2:
        return pieces
    sizes = [len(piece) for piece in pieces]
    cut = min(range(1, len(pieces)), key=lambda i: abs(sum(sizes[:i]) - len(chunk) / 2))
    return ["".join(pieces[:cut]), "".join(pieces[cut:])]


def _kept(chunk: str, warning: str, usage: Usage | None = None) -> _Piece:
    log.warning(warning)
    return _Piece(chunk, [warning], usage or Usage(), kept=1)


def _merge(pieces: list[_Piece]) -> _Piece:
    merged = _Piece("".join(piece.text for piece in pieces))
    for piece in pieces:
        merged.warnings += piece.warnings
        merged.usage += piece.usage
        merged.done += piece.done
        merged.kept += piece.kept
    return merged
