"""Issue 4 benchmarks through the real service on local Ray, each printed as a ratio or
percentile measured side by side in this one run:

  a) one ~4-minute speech video end to end through the service / bare faster-whisper on
     the same audio with the same ASR settings (goal <= 1.15);
  b) makespan of 6 videos behind a throttled download with the Transcriber pool / the
     same 6 submitted one at a time (goal <= 0.5);
  c) submit latency (median, p99) under 100 concurrent POSTs (goal: median < 50 ms).

    .venv/bin/python bench/service_bench.py [a] [b] [c]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.asr import SpeechRecognizer
from bench.local_stack import LocalStack
from serve_app.server import DEFAULT_CONFIG, load_app_config
from serve_app.settings import AsrSettings
from tests.support.service import TOKEN, Service, app_settings
from tests.support.video_site import SPEECH_EN_AUDIO

ASR_THREADS = 2  # this machine's cores: the replica reserves them all, bare uses the same


def long_speech(path: Path, repeats: int = 17) -> Path:
    """~4 minutes of speech: the committed clip repeated (AAC copy, no re-encode)."""
    listing = path.with_suffix(".txt")
    listing.write_text(f"file '{SPEECH_EN_AUDIO}'\n" * repeats)
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(path),
        ],
        check=True,
    )
    return path


class Bench(LocalStack):
    def deploy(self, transcriber: dict[str, Any], **overrides: Any) -> Service:
        from ray import serve

        from serve_app.app import APP_NAME, compose_app

        self.start_ray(num_cpus=4)
        _, options = load_app_config(DEFAULT_CONFIG)
        # Short drain: undeploying between runs must not wait on leftover work tokens.
        options["Transcriber"] = {**options["Transcriber"], "graceful_shutdown_timeout_s": 5, **transcriber}
        settings = app_settings(self.data_dir, self.site, self.llm, self.wecom, **overrides)
        settings["asr"] = {"cpu_threads": ASR_THREADS}
        serve.run(compose_app(settings, options), name=APP_NAME, route_prefix="/")
        return Service(self.base_url, TOKEN, self.data_dir)

    def undeploy(self) -> None:
        from ray import serve

        from serve_app.app import APP_NAME

        serve.delete(APP_NAME)


def bench_a(bench: Bench) -> None:
    audio = long_speech(bench.root / "long.m4a")
    recognizer = SpeechRecognizer(AsrSettings(cpu_threads=ASR_THREADS), bench.data_dir)
    started = time.perf_counter()
    transcript = recognizer.transcribe(audio)
    bare = time.perf_counter() - started
    del recognizer

    page = bench.site.add_video("long-speech", audio, title="Four minutes")
    service = bench.deploy(
        {"ray_actor_options": {"num_cpus": ASR_THREADS}, "autoscaling_config": {"min_replicas": 1, "max_replicas": 1}}
    )
    started = time.perf_counter()
    task_id = service.submit(page).json()["task_id"]
    view = service.wait_finished([task_id], timeout=900)[task_id]
    through_service = time.perf_counter() - started
    bench.undeploy()
    assert view["status"] == "done", view
    print(
        f"a) {transcript.duration:.0f} s of speech: bare faster-whisper {bare:.1f} s, "
        f"through the service (submit -> delivered) {through_service:.1f} s"
    )
    print(f"   ratio service/bare = {through_service / bare:.3f} (goal <= 1.15)")


def bench_b(bench: Bench) -> None:
    size = SPEECH_EN_AUDIO.stat().st_size
    throttle = size // 8  # each download takes ~8 s: the network is the slow part
    pages = [
        bench.site.add_video(f"slow-{i}", SPEECH_EN_AUDIO, title=f"Slow {i}", throttle_bps=throttle) for i in range(12)
    ]
    service = bench.deploy(
        {"ray_actor_options": {"num_cpus": 1}, "autoscaling_config": {"min_replicas": 3, "max_replicas": 3}}
    )
    started = time.perf_counter()
    ids = [service.submit(page).json()["task_id"] for page in pages[:6]]
    views = service.wait_finished(ids, timeout=900)
    pool = time.perf_counter() - started
    started = time.perf_counter()
    for page in pages[6:]:
        task_id = service.submit(page).json()["task_id"]
        views |= service.wait_finished([task_id], timeout=900)
    one_at_a_time = time.perf_counter() - started
    bench.undeploy()
    assert {v["status"] for v in views.values()} == {"done"}
    print(
        f"b) 6 videos, downloads throttled to {throttle / 1000:.0f} kB/s (~8 s each): "
        f"pool {pool:.1f} s, one at a time {one_at_a_time:.1f} s"
    )
    print(f"   makespan ratio pool/sequential = {pool / one_at_a_time:.3f} (goal <= 0.5)")


def bench_c(bench: Bench) -> None:
    service = bench.deploy({"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}}, max_queued_tasks=1000)
    urls = [bench.site.url(f"/missing-{i}.html") for i in range(100)]

    async def one(client: httpx.AsyncClient, url: str) -> tuple[int, float]:
        started = time.perf_counter()
        response = await client.post(f"{service.base_url}/api/transcribe", json={"url": url})
        return response.status_code, time.perf_counter() - started

    async def burst() -> list[tuple[int, float]]:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(headers=service.auth, limits=limits, timeout=30) as client:
            await client.get(f"{service.base_url}/healthz")
            return list(await asyncio.gather(*(one(client, url) for url in urls)))

    results = asyncio.run(burst())
    latencies = sorted(seconds * 1000 for _, seconds in results)
    codes = sorted({code for code, _ in results})
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"c) 100 concurrent POST /api/transcribe: status codes {codes}, "
        f"median {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms (goal: median < 50 ms)"
    )


def main() -> None:
    chosen = set(sys.argv[1:]) or {"a", "b", "c"}
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        try:
            for name, run in (("b", bench_b), ("a", bench_a), ("c", bench_c)):
                if name in chosen:
                    run(bench)
        finally:
            bench.close()


if __name__ == "__main__":
    main()
