"""Proofread and summarise one task's transcript, reusing cached layers.

Plain module (no Ray). A failing LLM step never fails the task: the video is still
delivered (raw transcript instead of proofread text) with a status notice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from actors.errors import LLMError
from actors.llm import LLMClient
from actors.models import TaskStatus
from actors.records import TaskRecord

log = logging.getLogger(__name__)


@dataclass
class Generated:
    """What the LLM produced for a task; None where a step was off or failed."""

    proofread: str | None = None
    summary: str | None = None
    failures: list[str] = field(default_factory=list)


async def generate(task: TaskRecord, llm: LLMClient | None, store: Any) -> Generated:
    """Run the enabled LLM steps that have no stored or cached result yet."""
    result = Generated(proofread=task.proofread, summary=task.summary)
    if llm is None or task.transcript is None or task.video is None:
        return result
    text = task.transcript.text
    key = (task.video.platform, task.video.video_id)
    if task.options.proofread and result.proofread is None:
        await store.update_task(task.task_id, status=TaskStatus.PROOFREADING, progress=0.0)
        cached = await store.cache_get(*key, "proofread")
        if cached is not None:
            result.proofread = cached
        else:
            try:
                proofread = await llm.proofread(text, task.video)
            except LLMError as error:
                result.failures.append(f"校对失败：{error.message}")
            else:
                result.proofread = proofread.text
                for warning in proofread.warnings:
                    await store.add_warning(task.task_id, warning)
                await store.cache_put(*key, "proofread", proofread.text)
        if result.proofread is not None:
            await store.update_task(task.task_id, proofread=result.proofread, progress=1.0)
    if task.options.summary and result.summary is None:
        await store.update_task(task.task_id, status=TaskStatus.SUMMARIZING, progress=0.0)
        cached = await store.cache_get(*key, "summary")
        if cached is not None:
            result.summary = cached
        else:
            try:
                result.summary = await llm.summarize(result.proofread or text, task.video)
            except LLMError as error:
                result.failures.append(f"总结失败：{error.message}")
            if result.summary is not None:
                await store.cache_put(*key, "summary", result.summary)
        if result.summary is not None:
            await store.update_task(task.task_id, summary=result.summary, progress=1.0)
    return result
