"""Faults on the way from link to group, each handled while other tasks go on.

Module-level, with real parts and no Ray: real yt-dlp against the local video site and
a file server that fails on purpose, the real Whisper model, the SQLite Store, the
Mailbox with the fake LLM and the WeCom receiver. `process` below is what the
Transcriber deployment does with a claimed task (tests/integration/test_service.py covers that shell).

LLM 429/500/timeout/truncated answers and WeCom 45009/-1/5xx/slow answers are covered in
tests/unit/test_llm.py, tests/unit/test_wecom.py and tests/integration/test_mailbox.py; a WeCom that refuses
connections is covered here.
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from actors.delivery.mailbox import Mailbox
from actors.domain.errors import VidscribeError
from actors.domain.task import TaskOptions, TaskRecord, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.media import DOWNLOAD_RETRIES
from actors.speech.job import TranscribeJob
from actors.speech.recognizer import SpeechRecognizer
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.settings import Settings
from tests.support.asr import HEARD_THE_CLIP
from tests.support.fake_llm import FakeLLM
from tests.support.service import free_port
from tests.support.text import word_overlap
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_TEXT, SPEECH_EN_VTT, VideoSite
from tests.support.wecom_receiver import WeComReceiver, assert_contiguous_blocks

GROUP = "faults"


# ---- a file server that fails on purpose ---------------------------------------------


@dataclass
class FaultyFile:
    """A file and how its next requests fail: steps are used up in order, then `then`."""

    data: bytes
    content_type: str
    steps: list[str]
    then: str
    served: list[str] = field(default_factory=list)  # the behaviour of each request so far


class FaultyFiles:
    """HTTP server whose files fail as scripted.

    "ok": the file (ranges honoured); "reset": a third of the body, then a TCP reset;
    "truncate": Content-Length of the whole file but the connection closes at 40 % of it,
    on every request (a resumed download gets nothing more); "truncate-unsized": the
    same without Content-Length, so the client cannot tell the file is short.
    """

    def __init__(self) -> None:
        self._files: dict[str, FaultyFile] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _faulty_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-files", daemon=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, path: str, data: bytes, content_type: str, steps: list[str], then: str = "ok") -> str:
        """Serve `data` at `path`, failing as `steps` say; returns its URL."""
        with self._lock:
            self._files[path] = FaultyFile(data, content_type, list(steps), then)
        return self.base_url + path

    def served(self, path: str) -> list[str]:
        """What each request for `path` got, in order."""
        with self._lock:
            return list(self._files[path].served)

    def _next(self, path: str) -> tuple[FaultyFile | None, str]:
        with self._lock:
            file = self._files.get(path)
            if file is None:
                return None, "missing"
            step = file.steps.pop(0) if file.steps else file.then
            file.served.append(step)
            return file, step

    def __enter__(self) -> FaultyFiles:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _faulty_handler(files: FaultyFiles) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a close ends the body

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            file, step = files._next(self.path.split("?")[0])
            if file is None:
                self.send_error(404)
                return
            size = len(file.data)
            start = 0
            wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if wanted and int(wanted[1]) < size:
                start = int(wanted[1])
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", file.content_type)
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            if step != "truncate-unsized":
                self.send_header("Content-Length", str(size - start))
            self.end_headers()
            try:
                if step == "ok":
                    self.wfile.write(file.data[start:])
                elif step == "reset":
                    self.wfile.write(file.data[start : start + (size - start) // 3])
                    self.wfile.flush()
                    # SO_LINGER 0: close() sends RST instead of FIN, as a dropped connection does.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                else:  # truncate, truncate-unsized: the body stops at 40 % of the file
                    self.wfile.write(file.data[start : max(start, size * 2 // 5)])
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler


@pytest.fixture(scope="module")
def faulty_files() -> Iterator[FaultyFiles]:
    with FaultyFiles() as server:
        yield server


# ---- media made at test time ----------------------------------------------------------


def make_audio(path: Path, source: str, seconds: float = 5.0) -> bytes:
    """An AAC .m4a from an ffmpeg lavfi source (silence, noise, a tone); returns its bytes."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    command = [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds)]
    subprocess.run([*command, "-ac", "1", "-c:a", "aac", "-b:a", "32k", str(path)], check=True, timeout=60)
    return path.read_bytes()


SOURCES = {
    "silence": "anullsrc=r=16000:cl=mono",
    "noise": "anoisesrc=r=16000:c=pink:a=0.4",
    "tone": "sine=frequency=440:sample_rate=16000",
}


# ---- the pipeline without Ray ---------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    db = Store(tmp_path / "vidscribe.db")
    yield db
    db.close()


@pytest.fixture
def settings(tmp_path: Path, fake_llm: FakeLLM, wecom: WeComReceiver) -> Settings:
    wecom.window_s = 1  # WeCom's limit logic, a shorter window
    return Settings(
        data_dir=tmp_path,
        allow_private_urls=True,  # the video site and the file server are on 127.0.0.1
        media={"socket_timeout_s": 5},
        llm=fake_llm.settings(timeout_s=5),
        wecom=wecom.settings(GROUP, allow_private_webhooks=True),  # other groups' webhooks too
    )


async def process(job: TranscribeJob, store: LocalStoreClient, mailbox: Mailbox, task_id: str) -> None:
    """What the Transcriber does with a claimed task: transcribe, hand over or fail with the code."""
    task = await store.claim_task(task_id, "test-worker", 60.0)
    assert task is not None
    try:
        await job.run(task)
        await mailbox.enqueue(task_id)
    except VidscribeError as error:
        await store.fail_task(task_id, error.code, error.message)
        await mailbox.notify_failed(task_id)
    finally:
        await store.release_task(task_id, "test-worker")


async def wait_finished(store: Store, task_ids: list[str], timeout: float = 60) -> dict[str, TaskRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = {t: store.get_task(t) for t in task_ids}
        if all(t is not None and t.status.finished for t in tasks.values()):
            return {k: v for k, v in tasks.items() if v is not None}
        await asyncio.sleep(0.1)
    raise AssertionError(f"not finished in {timeout}s: { {t: store.get_task(t) for t in task_ids} }")


async def run_tasks(
    store: Store, settings: Settings, recognizer: SpeechRecognizer, urls: list[str]
) -> list[TaskRecord]:
    """Submit `urls`, process them all at once on one 'replica', wait until each is finished."""
    client = LocalStoreClient(store)
    job = TranscribeJob(client, settings, lambda: recognizer, asyncio.Semaphore(1))
    mailbox = Mailbox(settings, client)
    mailbox.start()
    try:
        task_ids = [store.create_task(url, TaskOptions())[0].task_id for url in urls]
        await asyncio.gather(*(process(job, client, mailbox, t) for t in task_ids))
        finished = await wait_finished(store, task_ids)
        # Failure notices go out after the task is marked failed; wait for them too.
        deadline = time.monotonic() + 30
        while store.lanes_with_pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        return [finished[t] for t in task_ids]
    finally:
        await mailbox.close()


def page_for(video_site: VideoSite, name: str, media_url: str, title: str) -> str:
    """A page `/<name>.html` on the video site whose <audio> plays `media_url` (on another server)."""
    return video_site.add_page(
        f"/{name}.html",
        f"<html><head><title>{title}</title></head><body><audio controls src='{media_url}'></audio></body></html>",
    )


@dataclass(frozen=True)
class Fault:
    """A media fault and what the task must end as."""

    steps: list[str]
    then: str = "ok"
    source: str | None = None  # an ffmpeg source for generated audio; else the speech clip
    corrupt: bool = False
    status: TaskStatus = TaskStatus.FAILED
    code: str | None = None  # the error code of a failed task
    message: str = ""  # a regex the human message must match
    requests: int = 1  # how many times the media file is requested


ATTEMPTS = 1 + DOWNLOAD_RETRIES
FAULTS = {
    "reset-once-then-ok": Fault(["reset"], status=TaskStatus.DONE, requests=2),
    "reset-every-time": Fault([], then="reset", code="download_failed", message="(?i)reset", requests=ATTEMPTS),
    # The file ends before its Content-Length: one resume, which gets nothing more, then a clear failure.
    "truncated": Fault([], then="truncate", code="download_failed", message="(?i)incomplete|no.* data", requests=2),
    "truncated-unsized": Fault([], then="truncate-unsized", code="download_failed", message="not playable"),
    "corrupt": Fault([], corrupt=True, code="download_failed", message="not playable"),
    "silence": Fault([], source="silence", code="no_speech", message="(?i)no speech"),
    "noise": Fault([], source="noise", code="no_speech", message="(?i)no speech"),
    "tone": Fault([], source="tone", code="no_speech", message="(?i)no speech"),
}


@pytest.mark.slow  # real Whisper on the clips that get that far
@pytest.mark.parametrize("name", list(FAULTS))
async def test_media_fault_ends_the_task_clearly_and_others_complete(
    name: str,
    tmp_path: Path,
    store: Store,
    settings: Settings,
    recognizer: SpeechRecognizer,
    video_site: VideoSite,
    faulty_files: FaultyFiles,
    wecom: WeComReceiver,
) -> None:
    fault = FAULTS[name]
    tag = f"{name}-{uuid.uuid4().hex[:6]}"
    if fault.source is not None:
        data = make_audio(tmp_path / f"{name}.m4a", SOURCES[fault.source])
    elif fault.corrupt:
        data = b"this is not an m4a file " * 2000
    else:
        data = SPEECH_EN_AUDIO.read_bytes()
    media_url = faulty_files.add(f"/{tag}.m4a", data, "audio/mp4", fault.steps, fault.then)
    faulty = page_for(video_site, tag, media_url, f"Faulty {tag}")
    good = video_site.add_video(f"good-{tag}", subtitles_vtt=SPEECH_EN_VTT, title=f"Good {tag}")

    bad_task, good_task = await run_tasks(store, settings, recognizer, [faulty, good])

    # The other task is unaffected: transcribed, proofread and delivered.
    assert good_task.status is TaskStatus.DONE, good_task.error
    assert good_task.delivery.state == "sent"
    # The faulty one ends as it should, with a stable code and a message a person can act on.
    assert bad_task.status is fault.status, (bad_task.status, bad_task.error)
    messages = [m.content for m in wecom.messages(GROUP)]
    if fault.status is TaskStatus.DONE:
        assert bad_task.source is TranscriptSource.ASR
        assert bad_task.transcript is not None
        assert word_overlap(SPEECH_EN_TEXT, bad_task.transcript.text) >= HEARD_THE_CLIP
        assert_contiguous_blocks(messages, expected_titles=[f"Faulty {tag}", f"Good {tag}"])
    else:
        assert bad_task.error is not None
        assert bad_task.error.code == fault.code, bad_task.error
        assert re.search(fault.message, bad_task.error.message), bad_task.error.message
        assert bad_task.transcript is None or bad_task.transcript.segments, "no empty transcript is kept"
        notices = [m for m in messages if m.startswith("【状态】") and f"Faulty {tag}" in m]
        assert len(notices) == 1 and fault.code in notices[0], messages  # the group is told, once
        assert_contiguous_blocks(messages, expected_titles=[f"Good {tag}"])
    # Retried where retrying helps (a reset, a short read), a bounded number of times.
    assert len(faulty_files.served(f"/{tag}.m4a")) == fault.requests
    assert not any((tmp_path / "tmp").iterdir())  # no media left behind


def _transcribed_task(store: Store, title: str, text: str, webhook: str) -> str:
    task, _ = store.create_task(f"https://videos.example/{title}", TaskOptions(summary=False), webhook=webhook)
    video = VideoInfo(url=task.url, platform="example", video_id=title, title=title, duration=10)
    transcript = Transcript(segments=[Segment(start=0, end=10, text=text)], source=TranscriptSource.ASR)
    store.update_task(task.task_id, video=video, transcript=transcript, status=TaskStatus.TRANSCRIBING)
    return task.task_id


async def _until(check: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        await asyncio.sleep(0.05)


async def test_refused_wecom_connection_holds_the_block_until_wecom_is_back(
    store: Store, settings: Settings, wecom: WeComReceiver
) -> None:
    port = free_port()  # nothing listens here yet: every send is "connection refused"
    down = WeComReceiver(port=port)
    down_lane = down.webhook_url("down")
    up_lane = wecom.webhook_url("up")
    text = "今天我们来聊一聊视频转录。这个系统会先下载音频！然后识别语音并校对文字？" * 80  # a few parts
    settings.wecom.max_attempts = 2  # give up quickly per message; the lane keeps the block
    waiting = _transcribed_task(store, "等待的视频", text, down_lane)
    other = _transcribed_task(store, "别的群", text, up_lane)
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox._lanes.outage_retry_s = 0.3  # how long a lane waits after WeCom stayed unreachable
    mailbox.start()
    try:
        await asyncio.gather(mailbox.enqueue(waiting), mailbox.enqueue(other))
        # Another group is unaffected while this one is unreachable.
        await _until(lambda: store.get_task(other).status is TaskStatus.DONE, 30, "the other group was served")  # type: ignore[union-attr]
        await asyncio.sleep(1.0)  # several refused rounds
        held = store.get_task(waiting)
        assert held is not None and held.status is TaskStatus.DELIVERING, held.status
        assert held.delivery.state == "sending" and held.delivery.parts_sent == 0
        assert held.error is None

        with down:  # WeCom is back, on the same address
            await _until(
                lambda: store.get_task(waiting).status.finished,  # type: ignore[union-attr]
                30,
                "the held block was delivered",
            )
            delivered = store.get_task(waiting)
            assert delivered is not None and delivered.status is TaskStatus.DONE
            assert delivered.delivery.parts_sent == delivered.delivery.parts_total >= 2
            contents = [m.content for m in down.messages("down")]
            assert len(contents) == len(set(contents)) == delivered.delivery.parts_total  # each part once
            assert_contiguous_blocks(contents, expected_titles=["等待的视频"])
    finally:
        await mailbox.close()
