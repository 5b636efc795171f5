"""Metrics on Ray's Prometheus endpoint and task ids in the structured logs: what an
operator scrapes and greps after real tasks ran through the whole service."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from actors.util import tasklog
from tests.support.service import Service
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_VTT

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]  # (sample name, labels) -> value

# -- the task id on log records (plain logging, no Ray) ----------------------------------


def test_log_records_carry_the_task_id(caplog: pytest.LogCaptureFixture) -> None:
    tasklog.install(to_serve_logs=False)
    log = logging.getLogger("actors.test")

    async def work() -> None:
        tasklog.bind("task-a")
        log.warning("in the task")
        await asyncio.to_thread(log.warning, "in a worker thread")
        await asyncio.create_task(asyncio.to_thread(log.warning, "in a child task"))

    async def main() -> None:
        await asyncio.create_task(work())
        log.warning("after the task")  # the binding stayed inside the task

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
        with tasklog.task_context("task-b"):
            log.warning("in a block")
        log.warning("after the block")
    tagged = {r.getMessage(): getattr(r, tasklog.FIELD, None) for r in caplog.records}
    assert tagged == {
        "in the task": "task-a",
        "in a worker thread": "task-a",
        "in a child task": "task-a",
        "after the task": None,
        "in a block": "task-b",
        "after the block": None,
    }


# -- the whole service ---------------------------------------------------------------------


def scrape(port: int) -> Series:
    """Every vidscribe sample on a node's metrics endpoint."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("ray_vidscribe_"):
                series[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return series


def delta(before: Series, after: Series, name: str, **labels: str) -> float:
    """How much `name` (summed over processes) grew, counting only series matching `labels`."""
    wanted = set(labels.items())
    return sum(value - before.get(key, 0.0) for key, value in after.items() if key[0] == name and wanted <= set(key[1]))


def bucket_delta(before: Series, after: Series, name: str, le: str, **labels: str) -> float:
    """Observations of histogram `name` at or below `le` since `before`."""
    return delta(before, after, f"{name}_bucket", le=le, **labels)


def worker_of(before: Series, after: Series, name: str) -> str:
    """The WorkerId label of the process whose `name` grew (e.g. the Store's)."""
    grown = {dict(key[1])["WorkerId"] for key, value in after.items() if key[0] == name and value > before.get(key, 0)}
    assert len(grown) == 1, grown
    return grown.pop()


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy (Ray exports metrics every few seconds)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what} not seen within {timeout}s")


def metrics_port() -> int:
    import ray

    (node,) = [n for n in ray.nodes() if n["Alive"]]
    return int(node["MetricsExportPort"])


def serve_logs() -> Path:
    import ray

    return Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"  # type: ignore[attr-defined]


def json_log_lines(deployment: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in serve_logs().glob(f"replica_vidscribe_{deployment}_*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    return lines


@pytest.mark.slow
def test_metrics_endpoint_and_task_logs(service_factory: Any, video_site: Any, fake_llm: Any, wecom: Any) -> None:
    # JSON replica logs come from ray_config.yaml's logging_config, like every deployment's options.
    service: Service = service_factory(
        deployment_options={"Transcriber": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}}}
    )
    port = metrics_port()
    before = scrape(port)
    name = uuid.uuid4().hex[:8]
    pages = [
        video_site.add_video(f"metrics-subs-{name}", subtitles_vtt=SPEECH_EN_VTT, title=f"Subtitled {name}"),
        video_site.add_video(f"metrics-asr-{name}", SPEECH_EN_AUDIO, title=f"Spoken {name}"),
        video_site.url(f"/metrics-missing-{name}.html"),  # 404: fails in resolving
    ]
    wecom.script("-1")  # the first message meets a busy WeCom: one retry
    fake_llm.script("500")  # the first LLM call fails: one error, then retried
    started = time.monotonic()
    task_ids = [service.submit(page).json()["task_id"] for page in pages]
    views = service.wait_finished(task_ids, timeout=180)
    subs, asr, missing = (views[task_id] for task_id in task_ids)
    assert (subs["status"], subs["source"]) == ("done", "subtitles")
    assert (asr["status"], asr["source"]) == ("done", "asr")
    assert (missing["status"], missing["error"]["code"]) == ("failed", "video_not_found")
    elapsed = time.monotonic() - started

    delivered = len(wecom.messages("group-a"))  # two content blocks and one failure notice
    llm_calls = len(fake_llm.requests)
    assert delivered >= 3
    assert llm_calls >= 3  # the failed one, then a proofread per transcript

    def settled() -> Series | None:
        after = scrape(port)
        ok = (
            delta(before, after, "ray_vidscribe_tasks_completed_total", source="asr") == 1
            and delta(before, after, "ray_vidscribe_wecom_messages_total", result="sent") == delivered
            and delta(before, after, "ray_vidscribe_llm_call_seconds_count") == llm_calls
            and delta(before, after, "ray_vidscribe_asr_real_time_factor_count") == 1
        )
        return after if ok else None

    after = wait_for(settled, 60, "the task metrics")

    def grew(metric: str, **labels: str) -> float:
        return delta(before, after, metric, **labels)

    # Tasks: submitted, completed by source, failed by source and code.
    assert grew("ray_vidscribe_tasks_submitted_total", cached="false") == 3
    assert grew("ray_vidscribe_tasks_submitted_total", client="default") == 3  # by client (issue 8)
    assert grew("ray_vidscribe_tasks_completed_total", source="subtitles") == 1
    assert grew("ray_vidscribe_tasks_completed_total") == 2
    assert grew("ray_vidscribe_tasks_failed_total", source="none", code="video_not_found") == 1
    assert grew("ray_vidscribe_tasks_failed_total") == 1

    # Queue depth: the Store's gauge is back to 0 with every task finished.
    store = worker_of(before, after, "ray_vidscribe_tasks_completed_total")
    depth = [v for k, v in after.items() if k[0] == "ray_vidscribe_queue_depth" and ("WorkerId", store) in k[1]]
    assert depth == [0.0]

    # Stage durations: one observation per stage a task went through, none longer than the run.
    stage = "ray_vidscribe_stage_seconds"
    counts = {s: grew(f"{stage}_count", stage=s) for s in ("queued", "resolving", "downloading", "transcribing")}
    assert counts == {"queued": 3, "resolving": 3, "downloading": 1, "transcribing": 1}
    assert grew(f"{stage}_count", stage="proofreading") == 2
    assert grew(f"{stage}_count", stage="delivering") == 2
    total = grew(f"{stage}_count")
    within_run = next(b for b in ("10.0", "20.0", "30.0", "60.0", "120.0", "300.0") if float(b) >= elapsed)
    assert bucket_delta(before, after, stage, within_run) == total

    # ASR real-time factor: one CPU run, faster than 5x real time would be absurd, slower than 5x broken.
    rtf = "ray_vidscribe_asr_real_time_factor"
    assert grew(f"{rtf}_count", device="cpu") == 1
    assert bucket_delta(before, after, rtf, "0.02") == 0
    assert bucket_delta(before, after, rtf, "5.0") == 1

    # WeCom: every accepted message counted once, the scripted busy answer as a retry.
    assert grew("ray_vidscribe_wecom_messages_total", result="retried") == 1
    assert grew("ray_vidscribe_wecom_messages_total", result="failed") == 0

    # LLM latency: the scripted 500 as an error, the rest ok, all well under the 10 s timeout.
    llm = "ray_vidscribe_llm_call_seconds"
    assert grew(f"{llm}_count", outcome="error") == 1
    assert grew(f"{llm}_count", outcome="ok", model="fake-proofread") == llm_calls - 1
    assert bucket_delta(before, after, llm, "10.0") == llm_calls

    # Structured logs: the Transcriber's and the LLMSender's lines about the ASR task carry its id.
    def task_lines() -> dict[str, list[dict[str, Any]]] | None:
        found = {
            deployment: [line for line in json_log_lines(deployment) if line.get(tasklog.FIELD) == asr["task_id"]]
            for deployment in ("Transcriber", "LLMSender")
        }
        return found if all(found.values()) else None

    lines = wait_for(task_lines, 20, "log lines with the task id")
    assert any("transcript ready" in line["message"] for line in lines["Transcriber"])
    assert all(line["replica"] and line["levelname"] for line in lines["Transcriber"] + lines["LLMSender"])
