"""Soak: 1 000 submissions in about a minute from loopback against the whole service on
local Ray, deployed as `vidscribe serve` does (ray_config.yaml's deployments), with a
bounded queue.

The local video site serves pages with subtitles (so tasks are fast and the load is on
the service, not on Whisper) and a few missing pages (tasks that fail); the fake LLM
proofreads and the WeCom receiver enforces 20 messages per window (a 1 s window here).
Submissions go out open-loop at a fixed rate from several client tokens, each under the
per-token rate limit. Then it checks what the issue promises:

- every answer is 202 or 429 (429 with Retry-After), never a hang or a 5xx;
- every accepted task ends done or failed with a reason; none is lost (the Store lists
  exactly the accepted tasks, nothing more);
- every done task's block reached the group exactly once, in one piece; every failure
  was announced once; no message arrived twice;
- the peak RSS of every process of the service (sampled twice a second) stays bounded.

    .venv/bin/python -m bench.soak [--submissions 1000] [--seconds 60] [--queue 100]

Exit status 0 when every check holds. Prints 202/429 counts, latency percentiles and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.local_stack import LocalStack
from serve_app.cli.serve import DEFAULT_CONFIG, load_app_config
from tests.support.service import app_settings
from tests.support.video_site import SPEECH_EN_VTT, VideoSite
from tests.support.wecom_receiver import STATUS_PREFIX, WeComReceiver, assert_contiguous_blocks

GROUP = "group-a"  # the app's default lane in tests.support.service.app_settings
MISSING_EVERY = 20  # one link in 20 is a missing page: a task that fails with a reason


@dataclass
class Answer:
    """One submission as the client saw it."""

    index: int
    url: str
    status: int
    seconds: float
    task_id: str | None = None
    code: str | None = None  # the error code of a refusal
    retry_after: str | None = None


# ---- the service ----------------------------------------------------------------------------


class Soak(LocalStack):
    """The local parts, Ray and the deployed app."""

    def __init__(self, root: Path, args: argparse.Namespace) -> None:
        super().__init__(root)
        self.args = args
        self.llm.latency = (0.02, 0.1)
        self.tokens = [f"soak-client-{i:02d}-{os.urandom(8).hex()}" for i in range(args.tokens)]

    def deploy(self) -> None:
        from ray import serve

        from serve_app.app import APP_NAME, compose_app

        self.start_ray(num_cpus=self.args.num_cpus, log_to_driver=False)
        _, options = load_app_config(DEFAULT_CONFIG)
        settings = app_settings(
            self.data_dir,
            self.site,
            self.llm,
            self.wecom,
            api_tokens=self.tokens,
            max_queued_tasks=self.args.queue,
            rate_limit_per_minute=self.args.rate_limit,
        )
        settings["wecom"]["window_s"] = self.wecom.window_s
        serve.run(compose_app(settings, options), name=APP_NAME, route_prefix="/")


def make_links(site: VideoSite, count: int) -> list[str]:
    """`count` distinct links (one task and one block each): subtitled pages, some missing."""
    links: list[str] = []
    for index in range(count):
        if index % MISSING_EVERY == MISSING_EVERY - 1:
            links.append(site.url(f"/missing-{index:04d}.html"))
        else:
            # The media is never fetched (the subtitles are enough): a few bytes will do.
            links.append(site.add_video(f"soak-{index:04d}", b"\0" * 16, SPEECH_EN_VTT, title=f"Soak {index:04d}"))
    return links


# ---- memory -----------------------------------------------------------------------------


class RssSampler:
    """Samples the RSS of this process and all its descendants (Ray's whole local cluster)."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.peak: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.marks: dict[str, dict[int, int]] = {}  # RSS at named moments, per pid
        self.first_seen: dict[int, float] = {}  # seconds after start; > 0: a process started during the run
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def mark(self, name: str) -> None:
        self.marks[name] = dict(self.sample())

    def sample(self) -> dict[int, int]:
        me = psutil.Process()
        now: dict[int, int] = {}
        for proc in [me, *me.children(recursive=True)]:
            try:
                rss = proc.memory_info().rss
                # A worker's title changes with what it hosts: keep the most telling one.
                name = _name(proc)
                if proc.pid not in self.names or not name.startswith(_PLACEHOLDERS):
                    self.names[proc.pid] = name
                self.first_seen.setdefault(proc.pid, time.monotonic() - self._started)
            except psutil.Error:
                continue
            now[proc.pid] = rss
            self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)
        self.last.update(now)
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()


_PLACEHOLDERS = ("ray::IDLE", "ray::SERVE_REPLICA::", "ray worker")


def _name(proc: psutil.Process) -> str:
    """A readable name: Ray workers set their title to ray::<Actor>."""
    try:
        cmdline = proc.cmdline()
    except psutil.Error:
        return proc.name()
    title = " ".join(cmdline) if cmdline else proc.name()
    if proc.pid == os.getpid():
        return "soak driver (load generator, video site, fake LLM, WeCom receiver)"
    if title.startswith("ray::"):
        return title.split()[0].split(".")[0]  # without the method running now
    if "default_worker.py" in title:
        return "ray worker (idle or starting)"
    for marker in ("gcs_server", "raylet", "dashboard", "log_monitor", "monitor.py", "ffmpeg"):
        if marker in title:
            return marker
    return title[:60]


# ---- load ---------------------------------------------------------------------------------


async def submit_all(base_url: str, tokens: list[str], links: list[str], seconds: float) -> list[Answer]:
    """Open loop: submission i goes out at i * seconds / len(links), whatever came back before."""
    interval = seconds / len(links)
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        started = time.perf_counter()

        async def one(index: int, url: str) -> Answer:
            await asyncio.sleep(max(0.0, started + index * interval - time.perf_counter()))
            headers = {"Authorization": f"Bearer {tokens[index % len(tokens)]}"}
            sent = time.perf_counter()
            try:
                response = await client.post("/api/transcribe", json={"url": url}, headers=headers)
            except httpx.HTTPError as error:
                return Answer(index, url, 0, time.perf_counter() - sent, code=type(error).__name__)
            answer = Answer(index, url, response.status_code, time.perf_counter() - sent)
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
            if response.status_code == 202:
                answer.task_id = body["task_id"]
            else:
                answer.code = (body.get("error") or {}).get("code")
                answer.retry_after = response.headers.get("retry-after")
            return answer

        return list(await asyncio.gather(*(one(i, url) for i, url in enumerate(links))))


async def list_all(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every task the Store has, through the paged task list."""
    tasks: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = (await client.get("/api/tasks", params={"limit": 200, "offset": offset})).json()
        tasks += page["tasks"]
        offset = page["next_offset"]
    return tasks


async def wait_all_finished(base_url: str, token: str, task_ids: set[str], timeout_s: float) -> float:
    """Poll the task list until every accepted task is finished; returns the seconds waited."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            listed = {t["task_id"]: t for t in await list_all(client)}
            open_ = [t for t in task_ids if listed.get(t, {}).get("status") not in ("done", "failed")]
            waited = time.perf_counter() - started
            if not open_ or waited > timeout_s:
                return waited
            print(f"   {waited:5.0f} s: {len(open_)} of {len(task_ids)} accepted tasks still open", flush=True)
            await asyncio.sleep(5)


async def final_views(base_url: str, token: str, task_ids: set[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """(each accepted task's full view, every task id the Store lists)."""
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as client:
        gate = asyncio.Semaphore(16)

        async def view(task_id: str) -> tuple[str, dict[str, Any]]:
            async with gate:
                response = await client.get(f"/api/task/{task_id}")
                return task_id, response.json() if response.status_code == 200 else {"status": "lost"}

        views = dict(await asyncio.gather(*(view(t) for t in task_ids)))
        listed = {t["task_id"] for t in await list_all(client)}
    return views, listed


# ---- report ---------------------------------------------------------------------------------


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(v * 1000 for v in values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.5):.0f} ms, p90 {at(0.9):.0f} ms, p99 {at(0.99):.0f} ms, max {ordered[-1]:.0f} ms"


def check(failures: list[str], ok: bool, what: str) -> None:
    print(f"   [{'ok' if ok else 'FAIL'}] {what}")
    if not ok:
        failures.append(what)


def report(
    answers: list[Answer],
    submit_s: float,
    views: dict[str, dict[str, Any]],
    listed: set[str],
    wecom: WeComReceiver,
    sampler: RssSampler,
) -> list[str]:
    failures: list[str] = []
    statuses = Counter(a.status for a in answers)
    refusals = Counter((a.status, a.code) for a in answers if a.status != 202)
    accepted = {a.task_id for a in answers if a.task_id}
    print(f"\nsubmissions: {len(answers)} in {submit_s:.1f} s ({len(answers) / submit_s:.1f}/s)")
    print(f"   status codes: {dict(sorted(statuses.items()))}; refusals by code: {dict(refusals)}")
    print(f"   202 answers: {statuses[202]} for {len(accepted)} distinct tasks")
    print(f"   latency all:  {percentiles([a.seconds for a in answers])}")
    print(f"   latency 202:  {percentiles([a.seconds for a in answers if a.status == 202])}")
    print(f"   latency 429:  {percentiles([a.seconds for a in answers if a.status == 429])}")

    outcomes = Counter(v["status"] for v in views.values())
    reasons = Counter(v["error"]["code"] for v in views.values() if v["status"] == "failed" and v.get("error"))
    print(f"\ntasks: {dict(outcomes)}; failure reasons: {dict(reasons)}")
    messages = wecom.messages(GROUP)
    contents = [m.content for m in messages]
    notices = [c for c in contents if c.startswith(STATUS_PREFIX)]
    print(f"group messages: {len(contents)} ({len(notices)} status notices)")

    print("\nchecks:")
    check(failures, set(statuses) <= {202, 429}, "every answer is 202 or 429 (no 5xx, no error, no hang)")
    check(failures, all(a.retry_after for a in answers if a.status == 429), "every 429 carries Retry-After")
    check(failures, statuses[429] > 0, "the queue bound was reached (some 429s)")
    check(failures, outcomes.keys() <= {"done", "failed"}, "every accepted task finished (none open, none lost)")
    check(
        failures,
        all(
            v.get("error", {}).get("code") and v["error"].get("message")
            for v in views.values()
            if v["status"] == "failed"
        ),
        "every failed task has a code and a message",
    )
    check(failures, listed == accepted, f"the Store lists exactly the accepted tasks ({len(listed)} = {len(accepted)})")
    done = [v for v in views.values() if v["status"] == "done"]
    check(
        failures,
        all(
            v["delivery"]["state"] == "sent" and v["delivery"]["parts_sent"] == v["delivery"]["parts_total"]
            for v in done
        ),
        "every done task was delivered in full",
    )
    check(failures, len(contents) == len(set(contents)), "no message arrived twice")
    try:
        blocks = assert_contiguous_blocks(contents)
        by_title = {v["video"]["title"] for v in done}
        check(
            failures, set(blocks) == by_title, f"one block per done task ({len(blocks)} blocks, {len(by_title)} done)"
        )
    except AssertionError as error:
        check(failures, False, f"blocks contiguous and whole: {error}")
    failed = [v for v in views.values() if v["status"] == "failed"]
    check(failures, len(notices) == len(failed), f"one failure notice per failed task ({len(notices)} / {len(failed)})")

    print("\npeak RSS per process (MB): peak | after submitting | at the end")
    after = sampler.marks.get("submitted", {})
    rows = sorted(sampler.peak, key=lambda pid: -sampler.peak[pid])
    for pid in rows:
        since = sampler.first_seen.get(pid, 0.0)
        started = f", started {since:.0f} s into the run" if since > 1 else ""
        print(
            f"   {sampler.peak[pid] / 2**20:8.1f} | {after.get(pid, 0) / 2**20:8.1f} | "
            f"{sampler.last.get(pid, 0) / 2**20:8.1f}  {sampler.names.get(pid, '?')} (pid {pid}{started})"
        )
    total_peak = sum(sampler.peak.values()) / 2**20
    print(f"   sum of peaks: {total_peak:.0f} MB over {len(sampler.peak)} processes")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="spread the submissions over this long")
    parser.add_argument("--queue", type=int, default=100, help="max_queued_tasks: unfinished tasks before 429")
    parser.add_argument("--tokens", type=int, default=10, help="client tokens the load is spread over")
    parser.add_argument("--rate-limit", type=int, default=120, help="submissions per token per minute")
    parser.add_argument("--num-cpus", type=int, default=4, help="logical CPUs of the local Ray")
    parser.add_argument("--drain-timeout", type=float, default=480.0, help="seconds to wait for accepted tasks")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="vidscribe-soak-") as tmp:
        soak = Soak(Path(tmp), args)
        try:
            started = time.perf_counter()
            soak.deploy()
            print(f"deployed in {time.perf_counter() - started:.1f} s on {soak.base_url}", flush=True)
            links = make_links(soak.site, args.submissions)
            sampler = RssSampler().start()
            started = time.perf_counter()
            answers = asyncio.run(submit_all(soak.base_url, soak.tokens, links, args.seconds))
            submit_s = time.perf_counter() - started
            sampler.mark("submitted")
            accepted = {a.task_id for a in answers if a.task_id}
            print(f"submitted {len(answers)} in {submit_s:.1f} s; waiting for {len(accepted)} tasks", flush=True)
            waited = asyncio.run(wait_all_finished(soak.base_url, soak.tokens[0], accepted, args.drain_timeout))
            print(f"drained in {waited:.1f} s after the last submission", flush=True)
            # Failure notices and the last blocks go out after the task is marked: let the lane finish.
            time.sleep(3)
            views, listed = asyncio.run(final_views(soak.base_url, soak.tokens[0], accepted))
            sampler.stop()
            failures = report(answers, submit_s, views, listed, soak.wecom, sampler)
        finally:
            soak.close()
    print(f"\n{'ALL CHECKS PASSED' if not failures else f'{len(failures)} CHECK(S) FAILED: {failures}'}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
