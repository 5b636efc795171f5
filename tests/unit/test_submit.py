"""Submitting a link and re-dispatching waiting work, driven through the FastAPI app of
`create_app` with a real SQLite Store and a recording work queue (no Ray)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from actors.domain.task import TaskOptions
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.http.app import create_app
from serve_app.http.redispatch import sweep_once
from serve_app.settings import Settings
from tests.support.local_gateway import RecordingWorkQueue

TOKEN = "submit-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "vidscribe.db") as opened:
        yield opened


def app_for(store: Store, work: RecordingWorkQueue, tmp_path: Path, **settings: object) -> httpx.AsyncClient:
    app = create_app(Settings(api_tokens=[TOKEN], data_dir=tmp_path, **settings), LocalStoreClient(store), work)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")


async def test_a_new_link_is_stored_and_dispatched_once(store: Store, tmp_path: Path) -> None:
    work = RecordingWorkQueue()
    async with app_for(store, work, tmp_path) as client:
        first = await client.post("/api/transcribe", json={"url": "https://www.youtube.com/watch?v=abc"}, headers=AUTH)
        again = await client.post("/api/transcribe", json={"url": "https://www.youtube.com/watch?v=abc"}, headers=AUTH)
    assert first.status_code == again.status_code == 202
    body = first.json()
    assert again.json()["task_id"] == body["task_id"]  # still running: the same task, no new work
    assert body["status_url"] == f"http://gateway.test/api/task/{body['task_id']}"
    assert body["view_url"] == f"http://gateway.test/view/{body['task_id']}"
    assert work.dispatched == 1 and work.announced == []  # notices.accepted is off by default
    stored = store.get_task(body["task_id"])
    assert stored is not None and stored.url == "https://www.youtube.com/watch?v=abc"


async def test_refusals_dispatch_nothing(store: Store, tmp_path: Path) -> None:
    work = RecordingWorkQueue()
    async with app_for(store, work, tmp_path, max_queued_tasks=1) as client:
        private = await client.post("/api/transcribe", json={"url": "http://127.0.0.1:22/x"}, headers=AUTH)
        assert private.status_code == 400 and private.json()["error"]["code"] == "forbidden_url"
        foreign = await client.post(
            "/api/transcribe",
            json={"url": "https://v.example/1", "options": {"webhook_url": "https://evil.example/send?key=k"}},
            headers=AUTH,
        )
        assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "forbidden_url"
        assert (await client.post("/api/transcribe", json={"url": "https://v.example/2"}, headers=AUTH)).is_success
        full = await client.post("/api/transcribe", json={"url": "https://v.example/3"}, headers=AUTH)
        assert full.status_code == 429 and full.headers["Retry-After"] == "30"
        assert full.json()["error"]["code"] == "queue_full"
        unauthorized = await client.post("/api/transcribe", json={"url": "https://v.example/4"})
        assert unauthorized.status_code == 401
    assert work.dispatched == 1  # only the one accepted task


async def test_accepted_notice_and_client_webhook(store: Store, tmp_path: Path) -> None:
    work = RecordingWorkQueue()
    clients = {"team": {"token": "team-token", "webhook_url": "https://qyapi.weixin.qq.com/x/send?key=team"}}
    async with app_for(store, work, tmp_path, notices={"accepted": True}, clients=clients) as client:
        response = await client.post(
            "/api/transcribe", json={"url": "https://v.example/team"}, headers={"Authorization": "Bearer team-token"}
        )
    task_id = response.json()["task_id"]
    assert work.announced == [task_id]
    stored = store.get_task(task_id)
    assert stored is not None and stored.client == "team"
    assert stored.webhook == "https://qyapi.weixin.qq.com/x/send?key=team"


async def test_a_requests_webhook_on_loopback_is_refused_even_when_the_operators_is_there(
    store: Store, tmp_path: Path
) -> None:
    relay = "http://10.0.0.7:8080/cgi-bin/webhook/send?key=team"  # an internal egress host
    clients = {"team": {"token": "team-token", "webhook_url": relay}}
    async with app_for(store, RecordingWorkQueue(), tmp_path, wecom={"webhook_url": relay}, clients=clients) as client:
        own = await client.post(
            "/api/transcribe",
            json={"url": "https://v.example/1", "options": {"webhook_url": "http://127.0.0.1:9/send?key=k"}},
            headers=AUTH,
        )
        by_client = await client.post(
            "/api/transcribe", json={"url": "https://v.example/2"}, headers={"Authorization": "Bearer team-token"}
        )
    assert own.status_code == 400 and own.json()["error"]["code"] == "forbidden_url"
    assert by_client.status_code == 202  # the operator's own relay is used as given


def test_operator_webhooks_are_the_default_groups_and_every_clients() -> None:
    settings = Settings(
        wecom={"webhook_url": "http://10.0.0.7/send?key=main"},
        clients={"a": {"token": "ta", "webhook_url": "http://relay.internal/send?key=a"}, "b": {"token": "tb"}},
    )

    assert settings.operator_webhooks() == {"http://10.0.0.7/send?key=main", "http://relay.internal/send?key=a"}


async def test_sweep_hands_out_one_token_per_waiting_task(store: Store) -> None:
    store.create_task("https://v.example/waiting", TaskOptions())
    done, _ = store.create_task("https://v.example/done", TaskOptions())
    store.fail_task(done.task_id, "x", "finished")
    work = RecordingWorkQueue()
    assert await sweep_once(LocalStoreClient(store), work, idle_s=0) == 1
    assert await sweep_once(LocalStoreClient(store), work, idle_s=60) == 0  # just handed out
    assert work.dispatched == 1


def test_the_app_sweeps_on_start(store: Store, tmp_path: Path) -> None:
    store.create_task("https://v.example/left-over", TaskOptions())  # a restart left it without a token
    work = RecordingWorkQueue()
    app = create_app(Settings(api_tokens=[TOKEN], data_dir=tmp_path), LocalStoreClient(store), work)
    with TestClient(app) as client:  # runs the lifespan: the sweep starts
        assert client.get("/healthz").text == "ok"
        deadline = time.monotonic() + 5
        while not work.dispatched and time.monotonic() < deadline:
            time.sleep(0.01)
    assert work.dispatched == 1


async def test_redeliver_queues_a_parked_block_again_whole(store: Store, tmp_path: Path) -> None:
    task, _ = store.create_task("https://v.example/parked", TaskOptions())
    block_id = store.add_block(
        task.task_id, "lane", "content", [("【校对 1/2】t\na", "text"), ("【校对 2/2】t\nb", "text")]
    )
    store.mark_part_sent(block_id, 0)
    store.abandon_block(block_id, -1, "WeCom kept failing")
    store.fail_task(task.task_id, "delivery_failed", "WeCom kept failing")
    async with app_for(store, RecordingWorkQueue(), tmp_path) as client:
        unknown = await client.post("/api/task/no-such-task/redeliver", headers=AUTH)
        accepted = await client.post(f"/api/task/{task.task_id}/redeliver", headers=AUTH)
        busy = await client.post(f"/api/task/{task.task_id}/redeliver", headers=AUTH)

    assert unknown.status_code == 404
    assert accepted.status_code == 202
    assert accepted.json()["status"] == "delivering" and accepted.json()["error"] is None
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "nothing_to_redeliver"
    block = store.next_block("lane")
    assert block is not None and [part.seq for part in block.parts] == [0, 1]  # whole, from the first part
