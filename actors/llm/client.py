"""Proofread and summarise transcripts with an OpenAI-compatible chat endpoint (no Ray).

System message: instructions plus context (title, author). User message: only the
transcript, or one part of it. The work is in `proofread` (chunks, split-and-redo,
per-chunk fallback), `summary` (map-reduce) and `endpoint` (deadlines, pacing, retries);
this facade holds them together, one per process, and checks the server once at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import openai

from actors.domain.errors import LLMError
from actors.domain.video import VideoInfo
from actors.llm.budget import Deadline
from actors.llm.endpoint import Endpoint
from actors.llm.probe import probe
from actors.llm.proofread import Proofreader, ProofreadResult, chunk_text
from actors.llm.settings import LLMSettings
from actors.llm.summary import Summarizer, SummaryResult

__all__ = ["LLMClient", "ProofreadResult", "SummaryResult", "chunk_text"]

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 30.0  # the start-up check must not hold the first task for long


class LLMClient:
    """Proofreads and summarises with the configured endpoint; one per process is enough."""

    def __init__(self, settings: LLMSettings, *, on_call: Callable[[str, float, bool], None] | None = None) -> None:
        self._settings = settings
        self._endpoint = Endpoint(settings, on_call=on_call)
        self._proofreader = Proofreader(self._endpoint)
        self._summarizer = Summarizer(self._endpoint)
        self._check: asyncio.Task[list[str]] | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: the first call starts it
            asyncio.get_running_loop()
            self._check = asyncio.create_task(self.check(), name="llm-check")

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        if self._check is not None and not self._check.done():
            self._check.cancel()
        await self._endpoint.aclose()

    @property
    def proofread_model(self) -> str:
        return self._settings.proofread_model

    @property
    def summary_model(self) -> str:
        return self._settings.summary_model

    def deadline(self) -> Deadline:
        """A fresh deadline for one video's LLM work."""
        return Deadline(self._settings.video_timeout_s)

    async def proofread(
        self,
        text: str,
        video: VideoInfo,
        *,
        on_progress: Callable[[int, int], None] | None = None,
        deadline: Deadline | None = None,
    ) -> ProofreadResult:
        """Proofread `text` chunk by chunk; `on_progress(done, total)` after each chunk."""
        self._check_length(text)
        await self._checked()
        return await self._proofreader.run(text, video, deadline or self.deadline(), on_progress)

    async def summarize(self, text: str, video: VideoInfo, *, deadline: Deadline | None = None) -> str | None:
        """Bullet-point summary in the transcript's language; None for short transcripts."""
        result = await self.summarize_in_detail(text, video, deadline=deadline)
        return result.text if result is not None else None

    async def summarize_in_detail(
        self, text: str, video: VideoInfo, *, deadline: Deadline | None = None
    ) -> SummaryResult | None:
        """The summary with its token usage and number of parts; None for short transcripts."""
        if len(text.strip()) < self._settings.summary_min_chars:
            return None
        self._check_length(text)
        await self._checked()
        return await self._summarizer.run(text.strip(), video, deadline or self.deadline())

    async def check(self) -> list[str]:
        """Check the key and the model names against the server; the problems found (also logged)."""
        settings = self._settings
        models = [settings.proofread_model, settings.summary_model]
        where = settings.base_url
        problems: list[str] = []
        try:
            async with asyncio.timeout(min(settings.timeout_s, CHECK_TIMEOUT_S)):
                found = await probe(self._endpoint.client, models, ask=False)
        except openai.AuthenticationError as e:
            problems.append(f"the LLM key was refused by {where}: {self._endpoint.reason(e)}")
        except openai.APIStatusError as e:
            problems.append(f"{where} refused a test request: HTTP {e.status_code}: {self._endpoint.reason(e)}")
        except (openai.APIConnectionError, TimeoutError) as e:
            problems.append(f"cannot reach the LLM at {where}: {e.__cause__ or e or 'timeout'}")
        else:
            for model, context in found.contexts.items():
                self._endpoint.learn_context(model, context)
            if found.missing:
                offered = ", ".join(sorted(found.listed or ())[:8]) or "none"
                problems.append(
                    f"{where} has no model {', '.join(found.missing)} (it lists: {offered}); "
                    "set VIDSCRIBE_LLM__PROOFREAD_MODEL / VIDSCRIBE_LLM__SUMMARY_MODEL to one it lists"
                )
        for problem in problems:
            log.error("LLM check: %s", problem)
        return problems

    async def _checked(self) -> None:
        """Wait for the start-up check (once): it may tell the context windows."""
        if self._check is None:
            self._check = asyncio.create_task(self.check(), name="llm-check")
        check = self._check
        try:
            await asyncio.shield(check)
        except asyncio.CancelledError:
            if not check.cancelled():  # we were cancelled, not the check (closed client)
                raise
        except Exception:
            log.warning("LLM check failed", exc_info=True)

    def _check_length(self, text: str) -> None:
        if len(text) > self._settings.max_input_chars:
            raise LLMError(
                f"transcript has {len(text)} characters, more than the "
                f"{self._settings.max_input_chars} the LLM step accepts",
                code="transcript_too_long",
            )
