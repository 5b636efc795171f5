"""`vidscribe submit URL [--wait]` and `vidscribe status ID`: the CLI against a running service.

The server and token come from flags, else VIDSCRIBE_SERVER / VIDSCRIBE_TOKEN, else the
token file that `vidscribe serve` writes on this machine (<data_dir>/api_token).
`--wait` follows the task's event stream (falling back to polling) with a progress bar.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from actors.domain.errors import VidscribeError
from serve_app.settings import Settings

DEFAULT_SERVER = "http://127.0.0.1:8000"
POLL_S = 1.0
STREAM_READ_TIMEOUT_S = 60.0  # the server sends a heartbeat every 15 s


class ServiceError(VidscribeError):
    """The service refused a request or could not be reached."""

    code = "service_error"


# -- configuration -----------------------------------------------------------------------


def resolve_server(explicit: str | None) -> str:
    """--server, else VIDSCRIBE_SERVER, else the local default."""
    return (explicit or os.environ.get("VIDSCRIBE_SERVER") or DEFAULT_SERVER).rstrip("/")


def resolve_token(explicit: str | None) -> str | None:
    """--token, else VIDSCRIBE_TOKEN, else the first of VIDSCRIBE_API_TOKENS, else <data_dir>/api_token."""
    if explicit:
        return explicit.strip()
    if os.environ.get("VIDSCRIBE_TOKEN"):
        return os.environ["VIDSCRIBE_TOKEN"].strip()
    configured = [t.strip() for t in os.environ.get("VIDSCRIBE_API_TOKENS", "").split(",") if t.strip()]
    if configured:
        return configured[0]
    token_file = Path(Settings().data_dir) / "api_token"
    try:
        return token_file.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


# -- HTTP --------------------------------------------------------------------------------


# command -> (HTTP method, path after /api/task/{id}, what it does)
TASK_ACTIONS = {
    "cancel": ("DELETE", "", "cancel a waiting or running task (its messages, once started, finish whole)"),
    "retry": ("POST", "/retry", "run a failed or cancelled task again, from its first missing step"),
    "redeliver": ("POST", "/redeliver", "send a finished task's messages to its group again, whole"),
}


class ServiceClient:
    """The few calls the CLI makes, with the API's errors turned into ServiceError."""

    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        self.server = server
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=server, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def submit(self, url: str, options: dict[str, Any]) -> dict[str, Any]:
        """POST /api/transcribe; the 202 body."""
        return self._json("POST", "/api/transcribe", json={"url": url, "options": options})

    def task(self, task_id: str) -> dict[str, Any]:
        """GET /api/task/{id}."""
        return self._json("GET", f"/api/task/{task_id}")

    def act(self, task_id: str, action: str) -> dict[str, Any]:
        """One of TASK_ACTIONS on the task; the task as it is afterwards."""
        method, suffix, _ = TASK_ACTIONS[action]
        return self._json(method, f"/api/task/{task_id}{suffix}")

    def events(self, task_id: str) -> Generator[tuple[str, dict[str, Any]], None, None]:
        """(event, data) pairs of the task's event stream, until the server ends it."""
        timeout = httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT_S)
        try:
            with self._http.stream("GET", f"/api/task/{task_id}/events", timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise _error_of(response)
                yield from parse_sse(response.iter_lines())
        except httpx.HTTPError as e:
            raise ServiceError(f"event stream of {self.server} broke: {e}", "unreachable") from e

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ServiceError(f"cannot reach {self.server}: {e}", "unreachable") from e
        if response.status_code >= 400:
            raise _error_of(response)
        return dict(response.json())


def _error_of(response: httpx.Response) -> ServiceError:
    try:
        error = response.json()["error"]
        return ServiceError(f"{error['message']} (HTTP {response.status_code})", error["code"])
    except (ValueError, KeyError, TypeError):
        return ServiceError(f"HTTP {response.status_code} from {response.url}", f"http_{response.status_code}")


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse text/event-stream lines into (event, JSON data) pairs; comments are skipped."""
    kind = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield kind, json.loads("\n".join(data))
            kind, data = "message", []
        elif line.startswith(":"):
            continue  # heartbeat
        else:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)


# -- following a task --------------------------------------------------------------------


class StageBar:
    """One tqdm bar on stderr that each stage takes over: `transcribing  42%|████    | 30/72 s`."""

    FORMAT = "{desc:<13} {percentage:3.0f}%|{bar}| "

    def __init__(self) -> None:
        self._bar: tqdm[Any] | None = None  # made at the first update: no empty bar before it

    def update(self, snapshot: dict[str, Any]) -> None:
        """Show a snapshot (an event's data or a task view)."""
        progress = snapshot.get("progress") or {}
        status, percent = str(snapshot.get("status")), round(100 * float(progress.get("fraction") or 0.0))
        # The detail goes in the format itself: tqdm's postfix would prefix it with ", ".
        bar_format = self.FORMAT + detail_of(progress).replace("{", "{{").replace("}", "}}")
        if self._bar is None:
            self._bar = tqdm(
                total=100, initial=percent, desc=status, file=sys.stderr, dynamic_ncols=True, bar_format=bar_format
            )
            return
        self._bar.set_description_str(status, refresh=False)
        self._bar.n = percent
        self._bar.bar_format = bar_format
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def detail_of(progress: dict[str, Any]) -> str:
    """Bytes or seconds done of the current stage, when it reports them."""
    if progress.get("downloaded_bytes") is not None:
        total = progress.get("total_bytes")
        done = progress["downloaded_bytes"] / 1e6
        return f"{done:.1f}/{total / 1e6:.1f} MB" if total else f"{done:.1f} MB"
    if progress.get("seconds") is not None:
        total = progress.get("duration")
        return f"{progress['seconds']:.0f}/{total:.0f} s" if total else f"{progress['seconds']:.0f} s"
    return ""


def wait_finished(
    client: ServiceClient, task_id: str, on_update: Callable[[dict[str, Any]], None], timeout: float
) -> dict[str, Any]:
    """Follow the task until done or failed (events, else polling); its final view."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with closing(client.events(task_id)) as events:  # closing: leaving early ends the stream
                for kind, data in events:
                    on_update(data)
                    if kind == "end" or time.monotonic() >= deadline:
                        break
        except ServiceError as e:
            if e.code in ("unauthorized", "not_found"):
                raise
            # A broken stream (proxy, restart): poll once, then reconnect.
        view = client.task(task_id)
        on_update(view)
        if view["status"] in ("done", "failed"):
            return view
        time.sleep(POLL_S)
    raise ServiceError(
        f"task {task_id} did not finish within {timeout:.0f} s; check later with `vidscribe status {task_id}`",
        "timeout",
    )


# -- output ------------------------------------------------------------------------------


def print_result(view: dict[str, Any], view_url: str) -> None:
    """Title, link, then the summary and the proofread text (or the raw transcript)."""
    video = view.get("video") or {}
    print(f"# {video.get('title') or video.get('url') or view['task_id']}")
    print(view_url)
    if view.get("summary"):
        print("\n## 总结 Summary\n")
        print(view["summary"].strip())
    if view.get("proofread"):
        print("\n## 校对稿 Proofread\n")
        print(view["proofread"].strip())
    elif view.get("transcript"):
        print("\n## 转录 Transcript\n")
        print(view["transcript"].strip())
    for warning in view.get("warnings") or []:
        print(f"vidscribe: warning: {warning}", file=sys.stderr)


def print_status(view: dict[str, Any], view_url: str) -> None:
    """A few `key: value` lines about the task."""
    video = view.get("video") or {}
    progress = view.get("progress") or {}
    lines = {
        "task": view["task_id"],
        "status": view["status"],
        "progress": f"{round(100 * float(progress.get('fraction') or 0))}% {detail_of(progress)}".strip(),
        "title": video.get("title"),
        "url": video.get("url"),
        "source": view.get("source"),
        "delivery": (view.get("delivery") or {}).get("state"),
        "error": f"{view['error']['message']} [{view['error']['code']}]" if view.get("error") else None,
        "view": view_url,
    }
    for key, value in lines.items():
        if value:
            print(f"{key + ':':<10}{value}")


# -- commands ----------------------------------------------------------------------------


def _add_connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help=f"service base URL (default: $VIDSCRIBE_SERVER or {DEFAULT_SERVER})")
    parser.add_argument("--token", help="API token (default: $VIDSCRIBE_TOKEN, else <data_dir>/api_token)")
    parser.add_argument("--json", action="store_true", help="print the task as JSON")


def add_submit_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe submit`."""
    p = commands.add_parser(
        "submit",
        help="send a video link to a running service",
        description="Submit a link to a running vidscribe service; with --wait, follow it to the end "
        "and print the summary and the proofread text.",
    )
    p.add_argument("url", metavar="URL", help="video link")
    p.add_argument("--wait", action="store_true", help="follow progress and print the result")
    p.add_argument("--timeout", type=float, default=3600.0, help="give up waiting after this many seconds")
    p.add_argument("--no-proofread", dest="proofread", action="store_false", help="skip proofreading")
    p.add_argument("--no-summary", dest="summary", action="store_false", help="skip the summary")
    p.add_argument("--language", help="spoken language, e.g. 'zh' (default: detect)")
    _add_connection_flags(p)
    p.set_defaults(handler=run_submit)


def add_status_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe status`."""
    p = commands.add_parser("status", help="show a task of a running service", description="Show one task.")
    p.add_argument("task_id", metavar="ID", help="task id (as `submit` printed it)")
    _add_connection_flags(p)
    p.set_defaults(handler=run_status)


def add_task_action_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `vidscribe cancel`, `retry` and `redeliver`."""
    for action, (_, _, does) in TASK_ACTIONS.items():
        p = commands.add_parser(action, help=does, description=does[0].upper() + does[1:] + ".")
        p.add_argument("task_id", metavar="ID", help="task id (as `submit` printed it)")
        _add_connection_flags(p)
        p.set_defaults(handler=run_task_action, task_action=action)


def run_task_action(args: argparse.Namespace) -> int:
    """Cancel, retry or redeliver a task; prints its status afterwards."""
    server = resolve_server(args.server)
    client = ServiceClient(server, resolve_token(args.token))
    try:
        view = client.act(args.task_id, args.task_action)
    finally:
        client.close()
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
    else:
        print(f"{args.task_action}: task {view['task_id']} is {view['status']}")
    return 0


def run_submit(args: argparse.Namespace) -> int:
    """Submit a link; with --wait follow it and print the result (exit 1 if it failed)."""
    server = resolve_server(args.server)
    client = ServiceClient(server, resolve_token(args.token))
    try:
        options: dict[str, Any] = {"proofread": args.proofread, "summary": args.summary}
        if args.language:
            options["language"] = args.language
        accepted = client.submit(args.url, options)
        task_id = accepted["task_id"]
        view_url = f"{server}/view/{task_id}"
        cached = " (cached)" if accepted.get("cached") else ""
        print(f"vidscribe: accepted task {task_id}{cached}: {view_url}", file=sys.stderr)
        if not args.wait:
            print(json.dumps(accepted, ensure_ascii=False) if args.json else task_id)
            return 0
        bar = StageBar()
        try:
            view = wait_finished(client, task_id, bar.update, args.timeout)
        finally:
            bar.close()
    finally:
        client.close()
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
    if view["status"] == "failed":
        error = view.get("error") or {}
        print(f"vidscribe: task failed: {error.get('message')} [{error.get('code')}]", file=sys.stderr)
        return 1
    if not args.json:
        print_result(view, view_url)
    return 0


def run_status(args: argparse.Namespace) -> int:
    """Print one task's state."""
    server = resolve_server(args.server)
    client = ServiceClient(server, resolve_token(args.token))
    try:
        view = client.task(args.task_id)
    finally:
        client.close()
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
    else:
        print_status(view, f"{server}/view/{view['task_id']}")
    return 0
