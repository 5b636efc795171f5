"""The Markdown export of a task: summary, proofread text and timed transcript in one document.

The transcript-only formats (txt, srt, vtt, json) are actors/formats.py's; this one
needs the whole task record, so it lives at the edge with the pages that offer it.
"""

from __future__ import annotations

from actors.domain.task import TaskRecord


def clock(seconds: float) -> str:
    """M:SS below an hour, else H:MM:SS."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def render_markdown(task: TaskRecord) -> str:
    """A readable Markdown document of everything the task produced."""
    video = task.video
    title = (video.title if video and video.title else task.url).replace("\n", " ")
    lines = [f"# {title}", ""]
    lines.append(f"- 链接 Link: <{video.url if video else task.url}>")
    if video and video.author:
        lines.append(f"- 作者 Author: {video.author}")
    duration = (video.duration if video else None) or (task.transcript.duration if task.transcript else None)
    if duration:
        lines.append(f"- 时长 Duration: {clock(duration)}")
    if task.source:
        lines.append(f"- 来源 Source: {task.source.value}")
    lines.append("")
    if task.summary:
        lines += ["## 总结 Summary", "", task.summary.strip(), ""]
    if task.proofread:
        lines += ["## 校对稿 Proofread", "", task.proofread.strip(), ""]
    if task.transcript and task.transcript.segments:
        lines += ["## 原始转录 Transcript", ""]
        # Two trailing spaces: a Markdown line break, so each segment keeps its own line.
        lines += [f"`{clock(s.start)}` {s.text.strip()}  " for s in task.transcript.segments if s.text.strip()]
        lines.append("")
    return "\n".join(lines)
