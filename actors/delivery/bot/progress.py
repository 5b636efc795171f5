"""Live progress in the robot's answer: the answer is a `stream` that shows each accepted
link's stage while it runs, and is finished once every task has reached delivery (its block
then arrives in the chat) or after `progress_max_s`, whichever comes first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from actors.delivery.bot.intake import LinkOutcome
from actors.domain.task import TaskRecord, TaskStatus

TaskStates = Callable[[str], Awaitable[TaskRecord | None]]  # a task's state without its texts
Update = Callable[[str, bool], Awaitable[None]]  # (content, finish)

STAGES = {
    TaskStatus.QUEUED: "排队中",
    TaskStatus.RESOLVING: "解析链接",
    TaskStatus.DOWNLOADING: "下载中",
    TaskStatus.TRANSCRIBING: "转录中",
    TaskStatus.PROOFREADING: "校对中",
    TaskStatus.SUMMARIZING: "总结中",
    TaskStatus.DELIVERING: "发送中",
    TaskStatus.DONE: "已完成",
    TaskStatus.FAILED: "失败",
    TaskStatus.CANCELLED: "已取消",
}


def progress_lines(states: list[TaskRecord | None]) -> str:
    """One short line per accepted link, in the answer's order (a few hundred bytes for ten)."""
    lines = ["进度："]
    for number, state in enumerate(states, start=1):
        stage = "未知" if state is None else STAGES[state.status]
        if state is not None and not state.status.finished and 0 < state.progress < 1:
            stage += f" {state.progress:.0%}"
        lines.append(f"- 第 {number} 个：{stage}")
    return "\n".join(lines)


async def follow(
    answer: str, outcomes: list[LinkOutcome], states_of: TaskStates, update: Update, every_s: float, for_s: float
) -> None:
    """Send `answer` at once as an open stream, then its accepted tasks' stages every `every_s`
    seconds (only when they changed); finish it when all reached delivery, or after `for_s`."""
    accepted = [o for o in outcomes if o.task_id is not None]
    await update(answer, False)
    deadline = time.monotonic() + for_s
    shown = answer
    while True:
        await asyncio.sleep(every_s)
        states = [await states_of(o.task_id) for o in accepted if o.task_id is not None]
        text = f"{answer}\n\n{progress_lines(states)}"
        if all(s is None or s.status.finished or s.status is TaskStatus.DELIVERING for s in states):
            await update(f"{text}\n\n结果见下方。", True)
            return
        if time.monotonic() >= deadline:
            await update(f"{text}\n\n仍在处理，完成后发到这里。", True)
            return
        if text != shown:
            await update(text, False)
            shown = text
