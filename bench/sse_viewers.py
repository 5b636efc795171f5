"""What live viewers cost the Store: N event streams on one running task, before and after.

    .venv/bin/python -m bench.sse_viewers [--viewers 50] [--seconds 60] [--chars 30000]

One task in the proofreading stage holds a transcript of `--chars` characters (30 000: a
half-hour talk) and moves its progress once a second, as the LLM step does. `--viewers`
event streams follow it for `--seconds`, first as the streams used to (the whole record
read on every poll, replayed here), then as `serve_app.http.listing.task_events` does now
(the version on every poll, the state without texts when it moved). Each Store call is
metered where the Ray handle would carry it: calls (one row each), bytes of the pickled
answer, and CPU time spent in the Store. Prints both and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.storage.client import StoreClient, run_operation
from actors.storage.store import Store
from serve_app.http import listing

SENTENCE = "今天我们来聊一聊视频转录的整个流程，从下载音频到识别语音。"


@dataclass
class Meter:
    calls: int = 0
    bytes: int = 0
    cpu_s: float = 0.0


class MeteredStoreClient(StoreClient):
    """The Store in this process, each call in a thread, metered as it would cross Ray."""

    def __init__(self, store: Store, meter: Meter) -> None:
        self._store, self._meter = store, meter

    async def _call(self, operation: str, /, *args: Any, **kwargs: Any) -> Any:
        def call() -> Any:
            started = time.thread_time()
            result = run_operation(self._store, operation, *args, **kwargs)
            self._meter.cpu_s += time.thread_time() - started
            self._meter.calls += 1
            self._meter.bytes += len(pickle.dumps(result))
            return result

        return await asyncio.to_thread(call)


async def old_viewer(store: StoreClient, task_id: str, poll_s: float, seconds: float) -> int:
    """The streams before: the whole record on every poll, compared by its snapshot."""
    last: dict[str, Any] | None = None
    events = 0
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        task = await store.get_task(task_id)
        if task is not None:
            current = listing.snapshot(task)
            if last is None or {**current, "updated_at": 0} != {**last, "updated_at": 0}:
                events, last = events + 1, current
        await asyncio.sleep(poll_s)
    return events


async def new_viewer(store: StoreClient, task_id: str, poll_s: float, seconds: float) -> int:
    """The streams now: `task_events` itself, counting the events it yields."""
    events = 0
    async for chunk in listing.task_events(store, task_id, poll_s=poll_s, max_s=seconds):
        events += chunk.startswith(b"id: ")
    return events


async def measure(
    viewer: Callable[[StoreClient, str, float, float], Any], viewers: int, seconds: float, chars: int
) -> tuple[Meter, int]:
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "vidscribe.db")
        task, _ = store.create_task("https://videos.example/talk", TaskOptions())
        text = (SENTENCE * (chars // len(SENTENCE) + 1))[:chars]
        transcript = Transcript(
            segments=[Segment(start=0, end=1800, text=text)], language="zh", source=TranscriptSource.ASR
        )
        video = VideoInfo(url=task.url, platform="example", video_id="talk", title="一场半小时的讲座", duration=1800)
        store.update_task(task.task_id, video=video, transcript=transcript, status=TaskStatus.PROOFREADING)
        meter = Meter()
        client = MeteredStoreClient(store, meter)

        async def progress() -> None:  # the LLM step moving on, once a second
            for step in range(int(seconds) + 1):
                store.update_task(task.task_id, progress=min(1.0, step / seconds), progress_detail={"chunk": step})
                await asyncio.sleep(1.0)

        mover = asyncio.create_task(progress())
        counts = await asyncio.gather(*(viewer(client, task.task_id, listing.POLL_S, seconds) for _ in range(viewers)))
        mover.cancel()
        store.close()
        return meter, sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chars", type=int, default=30_000, help="transcript length in characters")
    args = parser.parse_args()
    results = {}
    for name, viewer in (("before", old_viewer), ("after", new_viewer)):
        results[name] = asyncio.run(measure(viewer, args.viewers, args.seconds, args.chars))
    per = args.viewers * args.seconds  # viewer-seconds
    print(f"{args.viewers} viewers x {args.seconds:g} s on one task with a {args.chars}-character transcript")
    print(f"{'':8}{'calls/viewer-s':>16}{'bytes/viewer-s':>16}{'Store CPU ms/s':>16}{'events':>8}")
    for name, (meter, events) in results.items():
        cpu_ms = 1000 * meter.cpu_s / args.seconds
        print(f"{name:8}{meter.calls / per:16.2f}{meter.bytes / per:16.0f}{cpu_ms:16.1f}{events:8}")
    (old, _), (new, _) = results["before"], results["after"]
    print(
        f"ratio   bytes read {old.bytes / max(1, new.bytes):.0f}x fewer, "
        f"Store CPU {old.cpu_s / max(1e-9, new.cpu_s):.1f}x less, Store calls {old.calls / max(1, new.calls):.2f}x"
    )


if __name__ == "__main__":
    main()
