"""One task's way from link to transcript: cache, else subtitles, else download + ASR.

Plain module (no Ray): the Transcriber deployment and the tests drive it with an
async store client (`StoreClient` or `LocalStoreClient`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from actors import media
from actors.domain.errors import NoSpeech, TaskCancelled
from actors.domain.task import TaskRecord, TaskStatus
from actors.domain.video import Transcript, TranscriptSource, VideoInfo
from actors.settings import PipelineSettings
from actors.speech.hints import PageHints
from actors.speech.recognizer import SpeechRecognizer
from actors.storage.client import StoreClient

log = logging.getLogger(__name__)
T = TypeVar("T")

PROGRESS_INTERVAL_S = 1.0


class ProgressReporter:
    """Forwards progress from a worker thread to the store, at most once a second; raises
    TaskCancelled in that thread once the store says the task was cancelled (the download or
    the recognition stops there)."""

    def __init__(self, store: StoreClient, task_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self._store, self._task_id, self._loop = store, task_id, loop
        self._last = 0.0
        self._cancelled = False

    def __call__(self, done: float, total: float | None, **detail: float | None) -> None:
        if self._cancelled:
            raise TaskCancelled(f"task {self._task_id} was cancelled")
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - self._last < PROGRESS_INTERVAL_S and not finished:
            return
        self._last = now
        fraction = min(done / total, 1.0) if total else 0.0
        asyncio.run_coroutine_threadsafe(self._push(fraction, detail), self._loop)

    async def _push(self, fraction: float, detail: dict[str, float | None]) -> None:
        try:
            await self._store.update_task(self._task_id, progress=fraction, progress_detail=detail)
        except TaskCancelled:
            self._cancelled = True
        except Exception:  # progress is best effort; the stage result is what counts
            log.warning("progress update failed for task %s", self._task_id, exc_info=True)


class TranscribeJob:
    """Turns a claimed task into a stored transcript (and a cached one)."""

    def __init__(
        self,
        store: StoreClient,
        settings: PipelineSettings,
        recognizer: Callable[[], SpeechRecognizer],
        asr_slot: asyncio.Semaphore,
        *,
        on_asr: Callable[[float, float], None] | None = None,
    ) -> None:
        self._store = store
        self._on_asr = on_asr  # (audio seconds, wall seconds) after each ASR run: the real-time factor
        self._settings = settings
        self._recognizer = recognizer
        self._asr_slot = asr_slot  # one ASR job at a time per replica; downloads overlap it
        self._workdir_base = settings.data_dir / "tmp"
        self.counters = {"downloads": 0, "asr_runs": 0, "subtitle_fetches": 0, "cache_hits": 0}

    async def run(self, task: TaskRecord) -> Transcript:
        """Resolve, reuse or produce the transcript, store it on the task and in the cache."""
        await self._store.update_task(task.task_id, status=TaskStatus.RESOLVING, progress=0.0, progress_detail={})
        # An item of a playlist shares the playlist's link: only its own page names its video.
        item = task.options.playlist_item
        known = await self._store.cached_video(task.url) if item is None else None
        if known is not None:  # seen before and fully cached: no need to even resolve it
            video = VideoInfo.model_validate(await self._store.cache_get(*known, "metadata"))
            await self._store.update_task(task.task_id, video=video)
            return await self._from_cache(task, video)
        probe = await self._resolve(task)
        if await self._store.cache_get(probe.video.platform, probe.video.video_id, "transcript") is not None:
            return await self._from_cache(task, probe.video)
        transcript = await self._subtitles(task, probe) or await self._speech_to_text(task, probe)
        video = probe.video
        await self._store.cache_put(video.platform, video.video_id, "transcript", transcript.model_dump(mode="json"))
        await self._store.update_task(task.task_id, transcript=transcript, source=transcript.source, progress=1.0)
        return transcript

    async def _from_cache(self, task: TaskRecord, video: VideoInfo) -> Transcript:
        self.counters["cache_hits"] += 1
        transcript = Transcript.model_validate(
            await self._store.cache_get(video.platform, video.video_id, "transcript")
        )
        await self._store.update_task(
            task.task_id, transcript=transcript, source=TranscriptSource.CACHE, cached=True, progress=1.0
        )
        return transcript

    async def _resolve(self, task: TaskRecord) -> media.Probe:
        item = task.options.playlist_item
        probe = await asyncio.to_thread(
            media.probe,
            task.url,
            self._settings.media,
            allow_private=self._settings.allow_private_urls,
            playlist_item=item,
        )
        video = probe.video
        await self._store.cache_put(video.platform, video.video_id, "metadata", video.model_dump(mode="json"))
        for url in {task.url, video.url} if item is None else {video.url}:
            await self._store.remember_alias(url, video.platform, video.video_id)
        await self._store.update_task(task.task_id, video=video)
        return probe

    async def _noting_warnings(self, task_id: str, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking `work` in a thread; what it warns of (a skipped track, a loop cut to
        one) is said on the task, not only logged."""
        warnings: list[str] = []
        result = await asyncio.to_thread(work, *args, on_warning=warnings.append, **kwargs)
        for warning in warnings:
            await self._store.add_warning(task_id, warning)
        return result

    async def _subtitles(self, task: TaskRecord, probe: media.Probe) -> Transcript | None:
        if not probe.subtitles:
            return None
        self.counters["subtitle_fetches"] += 1
        return await self._noting_warnings(
            task.task_id,
            media.fetch_subtitles,
            probe,
            self._settings.media,
            allow_private=self._settings.allow_private_urls,
        )

    async def _speech_to_text(self, task: TaskRecord, probe: media.Probe) -> Transcript:
        loop = asyncio.get_running_loop()
        self._workdir_base.mkdir(parents=True, exist_ok=True)
        with media.media_workdir(self._workdir_base) as workdir:
            await self._store.update_task(task.task_id, status=TaskStatus.DOWNLOADING, progress=0.0)
            downloaded = ProgressReporter(self._store, task.task_id, loop)
            self.counters["downloads"] += 1
            audio = await asyncio.to_thread(
                media.download_audio,
                probe,
                workdir,
                self._settings.media,
                on_progress=lambda done, total: downloaded(done, total, downloaded_bytes=done, total_bytes=total),
                allow_private=self._settings.allow_private_urls,
            )
            async with self._asr_slot:
                await self._store.update_task(task.task_id, status=TaskStatus.TRANSCRIBING, progress=0.0)
                heard = ProgressReporter(self._store, task.task_id, loop)
                self.counters["asr_runs"] += 1
                started = time.monotonic()
                transcript = await self._noting_warnings(
                    task.task_id,
                    self._recognizer().transcribe,
                    Path(audio),
                    language=task.options.language,
                    hints=PageHints.of(probe.video),
                    on_progress=lambda done, total: heard(done, total, seconds=done, duration=total),
                )
                if self._on_asr is not None and transcript.duration:
                    self._on_asr(transcript.duration, time.monotonic() - started)
                if not transcript.segments:
                    # Nothing to read, proofread or send: a clear failure, not an empty block.
                    raise NoSpeech("no speech was heard in the audio (silence, noise or music only)")
                return transcript
