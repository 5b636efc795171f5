"""Proofread and summarise one task's transcript, reusing cached layers.

Plain module (no Ray). A failing LLM step never fails the task: the video is still
delivered (raw transcript instead of proofread text, no summary) with a status notice.
Both steps share one deadline (`video_timeout_s`). A proofread in which some chunks
kept their original text is delivered but not cached: a later request tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from actors.domain.errors import LLMError
from actors.domain.task import TaskRecord, TaskStatus, TokenUsage
from actors.llm.client import LLMClient
from actors.llm.endpoint import StepFailed, Usage
from actors.storage.client import StoreClient

log = logging.getLogger(__name__)
T = TypeVar("T")

UsageObserver = Callable[[TaskRecord, TokenUsage], None]  # metrics: a step's tokens, with its task


@dataclass
class Generated:
    """What the LLM produced for a task; None where a step was off or failed."""

    proofread: str | None = None
    summary: str | None = None
    failures: list[str] = field(default_factory=list)


@dataclass
class _Step:
    """A step's value and whether it may go into the shared cache."""

    value: str | None
    cacheable: bool = True


async def generate(
    task: TaskRecord, llm: LLMClient | None, store: StoreClient, on_usage: UsageObserver | None = None
) -> Generated:
    """Run the enabled LLM steps that have no stored or cached result yet; each step's tokens
    go on the task (`llm_usage`) and to `on_usage`."""
    result = Generated(proofread=task.proofread, summary=task.summary)
    if llm is None or task.transcript is None or task.video is None:
        return result
    text, video = task.transcript.text, task.video
    deadline = llm.deadline()
    spent = dict(task.llm_usage)

    async def record(step: str, model: str, usage: Usage) -> None:
        tokens = TokenUsage(model=model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)
        spent[step] = tokens
        await store.update_task(task.task_id, llm_usage=spent)
        if on_usage is not None:
            on_usage(task, tokens)

    async def spending(step: str, model: str, work: Awaitable[T]) -> T:
        """`work`'s result; a step that fails after its requests cost tokens still counts them."""
        try:
            return await work
        except StepFailed as failed:
            if failed.usage != Usage():
                await record(step, model, failed.usage)
            raise

    async def proofread() -> _Step:
        done = await spending("proofread", llm.proofread_model, llm.proofread(text, video, deadline=deadline))
        for warning in done.warnings:
            await store.add_warning(task.task_id, warning)
        await record("proofread", llm.proofread_model, done.usage)
        return _Step(done.text, cacheable=done.kept == 0)

    async def summarize() -> _Step:
        summarized = llm.summarize_in_detail(result.proofread or text, video, deadline=deadline)
        done = await spending("summary", llm.summary_model, summarized)
        if done is None:
            return _Step(None)
        await record("summary", llm.summary_model, done.usage)
        return _Step(done.text)

    if task.options.proofread and result.proofread is None:
        result.proofread = await _step(task, store, result, TaskStatus.PROOFREADING, "proofread", "校对", proofread)
    if task.options.summary and result.summary is None:
        result.summary = await _step(task, store, result, TaskStatus.SUMMARIZING, "summary", "总结", summarize)
    return result


async def _step(
    task: TaskRecord,
    store: StoreClient,
    result: Generated,
    stage: TaskStatus,
    layer: str,
    label: str,
    produce: Callable[[], Awaitable[_Step]],
) -> str | None:
    """One LLM step: its cached layer if there is one, else `produce` (cached after if complete);
    an LLM failure is recorded in `result.failures`, not raised."""
    assert task.video is not None
    key = (task.video.platform, task.video.video_id)
    await store.update_task(task.task_id, status=stage, progress=0.0)
    value = await store.cache_get(*key, layer)
    if value is None:
        try:
            made = await produce()
        except LLMError as error:
            result.failures.append(f"{label}失败：{error.message}")
        else:
            value = made.value
            if value is not None and made.cacheable:
                await store.cache_put(*key, layer, value)
    if value is not None:
        await store.update_task(task.task_id, **{layer: value, "progress": 1.0})
    return value
