"""Downloads: the transcript as txt, srt, vtt or json (actors/domain/formats.py), or the
whole task as one Markdown document (summary, proofread text, timed transcript)."""

import re
from typing import Literal, cast
from urllib.parse import quote

from fastapi.responses import Response

from actors.domain.formats import TranscriptFormat, clock, media_type, render
from actors.domain.task import TaskRecord
from serve_app.http.errors import ApiError
from serve_app.http.headers import PRIVATE_HEADERS


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


ExportFormat = Literal["txt", "srt", "vtt", "json", "md"]


def export_response(task: TaskRecord, format: ExportFormat) -> Response:
    """The transcript as a download (txt, srt, vtt, json) or the whole result as Markdown (md)."""
    if task.transcript is None:
        raise ApiError(409, "not_ready", f"the transcript is not ready (status {task.status})")
    if format == "md":
        body, content_type = render_markdown(task), "text/markdown; charset=utf-8"
    else:
        fmt = cast(TranscriptFormat, format)  # every ExportFormat but md is a TranscriptFormat
        body, content_type = render(task.transcript, fmt), media_type(fmt)
    title = task.video.title if task.video and task.video.title else task.task_id
    headers = {**PRIVATE_HEADERS, "Content-Disposition": attachment(title, format)}
    return Response(body, media_type=content_type, headers=headers)


def attachment(title: str, extension: str) -> str:
    """A Content-Disposition naming the file after the video: ASCII fallback plus UTF-8 name."""
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', " ", title).strip()[:80] or "transcript"
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip(" _") or "transcript"
    return f"attachment; filename=\"{ascii_name}.{extension}\"; filename*=UTF-8''{quote(name)}.{extension}"
