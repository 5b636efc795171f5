"""A video's content block and the status notices, as the (content, msgtype) parts the
outbox stores: proofread parts, then summary parts, or one file part for a long text."""

from __future__ import annotations

import re

from pydantic import BaseModel

from actors.delivery.markup import inert, summary_markup
from actors.delivery.render import BlockKind, render_parts, render_status
from actors.domain.task import TaskRecord

Part = tuple[str, str]  # (content, msgtype)
FILE_MSGTYPE = "file"  # a part whose content is an Attachment as JSON
FILENAME_MAX_CHARS = 60
_UNSAFE_IN_FILENAME = re.compile(r"[^\w.-]+")


class Attachment(BaseModel):
    """A text sent as a file: uploaded to WeCom, then posted as a `file` message."""

    filename: str
    text: str


def attachment_name(title: str, kind: BlockKind) -> str:
    """`<title>-校对.txt`: letters, digits, `_`, `-` and `.` only, the title part bounded."""
    stem = _UNSAFE_IN_FILENAME.sub("_", title)[:FILENAME_MAX_CHARS].strip("._")
    return f"{stem or 'video'}-{kind}.txt"


def content_parts(
    task: TaskRecord,
    proofread: str | None,
    summary: str | None,
    msgtype: str,
    view_url: str | None = None,
    attach_after: int = 0,
) -> list[Part]:
    """The task's content block: proofread parts then summary parts (or the raw transcript),
    the last message ending with the link to the task's view page when there is one.

    A text that would take more than `attach_after` messages (0: no limit) goes as one file
    part at the end of the block instead, announced by the summary (or a 1/1 note). Every
    text from outside is made inert first (see `markup`); the file keeps it as it is.
    """
    assert task.transcript is not None
    title = task.video.title if task.video else task.url
    shown = inert(title)
    link = (
        "" if view_url is None else f"\n\n查看全文：{view_url}" if msgtype == "text" else f"\n\n[查看全文]({view_url})"
    )
    main_kind, main_text = (
        (BlockKind.PROOFREAD, proofread) if proofread is not None else (BlockKind.TRANSCRIPT, task.transcript.text)
    )
    summary = None if summary is None else summary_markup(summary, msgtype)
    body = render_parts(main_kind, shown, inert(main_text) + (link if summary is None else ""), msgtype)
    attached: list[Part] = []
    if 0 < attach_after < len(body):  # it would flood the group: one file instead
        attachment = Attachment(filename=attachment_name(title, main_kind), text=main_text)
        attached = [(attachment.model_dump_json(), FILE_MSGTYPE)]
        note = f"全文共 {len(main_text)} 字，见附件 {attachment.filename}"
        body = [] if summary is not None else render_parts(main_kind, shown, note + link, msgtype)
        summary = None if summary is None else f"{summary}\n\n{note}"
    if summary is not None:
        body += render_parts(BlockKind.SUMMARY, shown, summary + link, msgtype)
    return [(content, msgtype) for content in body] + attached


def status_parts(text: str) -> list[Part]:
    """A status notice: a block of its own, never inside a content block. Its text quotes
    titles, links and error messages: made inert."""
    return [(render_status(inert(text)), "text")]
