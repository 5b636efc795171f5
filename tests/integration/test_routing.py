"""Routing and priority: each client's own WeCom group, order per group, groups in
parallel; priority lanes with aging."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.delivery.mailbox import Mailbox
from actors.domain.priority import Priority, PriorityGate
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.settings import Settings
from tests.integration.test_mailbox import add_transcribed_task, transcript_text, wait_all
from tests.support.service import Service
from tests.support.video_site import SPEECH_EN_AUDIO, SPEECH_EN_VTT
from tests.support.wecom_receiver import assert_contiguous_blocks


async def test_slow_group_does_not_delay_the_other(tmp_path: Path, fake_llm: Any, wecom: Any) -> None:
    wecom.window_s = 1
    wecom.delay_for("slow", 3.0)  # every message to this group takes 3 s to be answered
    store = Store(tmp_path / "vidscribe.db")
    lanes = {"slow": wecom.webhook_url("slow"), "fast": wecom.webhook_url("fast")}
    titles = {group: [f"{group}-{index}" for index in range(6)] for group in lanes}
    task_ids: dict[str, list[str]] = {group: [] for group in lanes}
    for index in range(6):
        for group in ("slow", "fast"):  # interleaved submissions, slow group first each time
            task_id = add_transcribed_task(store, titles[group][index], transcript_text(8, index), summary=False)
            store.update_task(task_id, webhook=lanes[group])
            task_ids[group].append(task_id)
    settings = Settings(
        data_dir=tmp_path,
        llm=fake_llm.settings(proofread_model="fake-proofread", summary_model="fake-summary"),
        wecom=wecom.settings("unused", allow_private_webhooks=True),  # per-task webhooks on 127.0.0.1
        sender={"generation_concurrency": 12},
    )
    mailbox = Mailbox(settings, LocalStoreClient(store))
    mailbox.start()
    started = time.monotonic()
    try:
        await asyncio.gather(*(mailbox.enqueue(t) for ids in task_ids.values() for t in ids))
        await wait_all(store, task_ids["fast"], timeout=60)
        fast_done = time.monotonic() - started
        await wait_all(store, task_ids["slow"], timeout=120)
        slow_done = time.monotonic() - started
    finally:
        await mailbox.close()
        store.close()
    print(f"\nfast group delivered in {fast_done:.1f} s, slow group (3 s per message) in {slow_done:.1f} s")
    assert fast_done < slow_done / 2
    for group in lanes:
        assert_contiguous_blocks(wecom.messages(group), expected_titles=titles[group])


async def test_priority_gate_serves_urgent_first_and_ages() -> None:
    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def work(name: str, priority: Priority, since: float | None = None) -> None:
        async with gate.slot(priority, since):
            order.append(name)
            await release.wait()

    holder = asyncio.create_task(work("first", Priority.LOW))
    await asyncio.sleep(0)
    now = time.time()
    waiting = [
        asyncio.create_task(work("low", Priority.LOW, now)),
        asyncio.create_task(work("old-low", Priority.LOW, now - 3600)),  # waited an hour: aged past high
        asyncio.create_task(work("high", Priority.HIGH, now)),
        asyncio.create_task(work("normal", Priority.NORMAL, now)),
    ]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(holder, *waiting)
    assert order == ["first", "old-low", "high", "normal", "low"]


@pytest.fixture
def routed_service(service_factory: Any, wecom: Any) -> Service:
    return service_factory(
        deployment_options={"Transcriber": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}}},
        clients={"team-b": {"token": "team-b-token", "webhook_url": wecom.webhook_url("group-b")}},
        wecom={"allowed_webhook_hosts": ["127.0.0.1"]},
    )


@pytest.mark.slow
def test_priority_and_client_routing_through_the_service(routed_service: Service, video_site: Any, wecom: Any) -> None:
    service = routed_service
    tag = uuid.uuid4().hex[:6]
    # Ten slow low-priority videos fill the one-replica pool's queue ...
    lows = [
        video_site.add_video(f"low-{tag}-{i}", SPEECH_EN_AUDIO, title=f"Low {i}", throttle_bps=60_000)
        for i in range(10)
    ]
    low_ids = [service.submit(url, priority="low").json()["task_id"] for url in lows]
    deadline = time.monotonic() + 60
    while service.task(low_ids[0])["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.2)
    # ... then an urgent one arrives, from team B: it goes next, and to team B's group.
    high_page = video_site.add_video(f"high-{tag}", subtitles_vtt=SPEECH_EN_VTT, title=f"Urgent {tag}")
    team_b = {"Authorization": "Bearer team-b-token"}
    response = httpx.post(
        f"{service.base_url}/api/transcribe", headers=team_b, json={"url": high_page, "options": {"priority": "high"}}
    )
    assert response.status_code == 202, response.text
    high_id = response.json()["task_id"]

    high = service.wait_finished([high_id], timeout=240)[high_id]
    lows_done_before = sum(service.task(t)["status"] == "done" for t in low_ids)
    print(f"\nhigh-priority task done while {lows_done_before} of 10 low-priority tasks were done")
    assert high["status"] == "done"
    assert lows_done_before <= 3  # only those already in flight on the replica may finish first
    assert next(m.content.split("\n", 1)[0] for m in wecom.messages("group-b")).endswith(f"Urgent {tag}")
    views = service.wait_finished(low_ids, timeout=400)
    assert {v["status"] for v in views.values()} == {"done"}  # low priority still completes
    assert all(f"Urgent {tag}" not in m.content for m in wecom.messages("group-a"))

    private = service.submit(high_page, webhook_url="http://10.0.0.7/cgi-bin/webhook/send?key=x")
    assert private.status_code == 400
    assert private.json()["error"]["code"] == "forbidden_url"
