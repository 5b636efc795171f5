"""The web pages: submit (`/`), history (`/history`) and a task's view page (`/view/{id}`).

The pages are HTML + JS (no CDN, no build step) that call the JSON API: each page's
`<main>` is in serve_app/http/templates/, put into the shared layout once at import;
scripts, style and icon are served from serve_app/http/static/. The view page needs no
token: its 128-bit random task id is the capability, so `/view/{id}/data`, `/events`
and `/transcript` expose that one task — and only what `TaskView` shows, never the
webhook or a token.
"""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from actors.domain.video import Segment
from serve_app.http.context import edge_of
from serve_app.http.errors import MAX_TASK_ID, ApiError, task_or_404
from serve_app.http.exports import ExportFormat, export_response
from serve_app.http.headers import PAGE_HEADERS, PRIVATE_HEADERS
from serve_app.http.listing import stream_task
from serve_app.http.schemas import TaskView

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
STATIC_FILES = frozenset(p.name for p in STATIC_DIR.iterdir() if p.is_file())  # nothing else is served


router = APIRouter()


class TaskPage(TaskView):
    """What the view page shows: the task view, the submitted link and the timed segments."""

    url: str
    segments: list[Segment]
    language: str | None


def _render(name: str, title: str, script: str | None, *, private: bool = False) -> str:
    """templates/<name>.html (what goes inside <main>) in the shared layout."""
    layout = (TEMPLATE_DIR / "layout.html").read_text(encoding="utf-8")
    scripts = ["common.js", script] if script else []
    return layout.format(
        robots='  <meta name="robots" content="noindex, nofollow">\n' if private else "",
        title=title,
        main=(TEMPLATE_DIR / f"{name}.html").read_text(encoding="utf-8"),
        scripts="".join(f'  <script src="/static/{js}"></script>\n' for js in scripts),
    )


# Rendered once: every request for a page gets the same bytes, no file read.
SUBMIT_PAGE = _render("submit", "提交视频", "submit.js")
HISTORY_PAGE = _render("history", "历史", "history.js")
VIEW_PAGE = _render("view", "任务", "view.js", private=True)
MISSING_PAGE = _render("missing", "任务不存在", None, private=True)


def _page(html: str, *, private: bool = False, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=PRIVATE_HEADERS if private else PAGE_HEADERS)


@router.get("/", include_in_schema=False)
async def submit_page() -> HTMLResponse:
    """The submit form."""
    return _page(SUBMIT_PAGE)


@router.get("/history", include_in_schema=False)
async def history_page() -> HTMLResponse:
    """The task list (the token comes from the browser's storage)."""
    return _page(HISTORY_PAGE)


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> FileResponse:
    """One of the files in serve_app/static (a fixed set: no paths, no traversal)."""
    if name not in STATIC_FILES:
        raise ApiError(404, "not_found", "no such file")
    return FileResponse(STATIC_DIR / name, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/view/{task_id}", include_in_schema=False)
async def view_page(task_id: str, request: Request) -> HTMLResponse:
    """The task's page; a plain 404 page for an unknown id."""
    if len(task_id) > MAX_TASK_ID or await edge_of(request).store.get_task(task_id) is None:
        return _page(MISSING_PAGE, private=True, status=404)
    return _page(VIEW_PAGE, private=True)


@router.get("/view/{task_id}/data", response_model=TaskPage)
async def view_data(task_id: str, request: Request, response: Response) -> TaskPage:
    """The task as the view page shows it."""
    task = await task_or_404(edge_of(request).store, task_id)
    response.headers.update(PRIVATE_HEADERS)
    view = TaskView.of(task)
    transcript = task.transcript
    return TaskPage(
        **view.model_dump(),
        url=task.url,
        segments=transcript.segments if transcript else [],
        language=transcript.language if transcript else None,
    )


@router.get("/view/{task_id}/events")
async def view_events(task_id: str, request: Request) -> StreamingResponse:
    """Live stage and progress changes (server-sent events), as /api/task/{id}/events."""
    return await stream_task(edge_of(request).store, task_id)


@router.get("/view/{task_id}/transcript")
async def view_transcript(task_id: str, request: Request, format: ExportFormat = "txt") -> Response:
    """Download the transcript (txt, srt, vtt, json) or the whole result as Markdown (md)."""
    return export_response(await task_or_404(edge_of(request).store, task_id), format)
