"""A playlist link with options.playlist_items: one task per item (listed in the answer, deduped
per item), bounded by a setting, and their blocks handed to the group in item order whichever
item is ready first. Through the FastAPI app of `create_app` and a real SQLite Store (no Ray)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from actors.domain.outbox import CONTENT_KEY
from actors.domain.task import TaskStatus
from actors.storage.client import LocalStoreClient
from actors.storage.store import Store
from serve_app.http.app import create_app
from serve_app.http.schemas import item_numbers
from serve_app.settings import Settings
from tests.support.local_gateway import RecordingWorkQueue

TOKEN = "playlist-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FEED = "https://space.bilibili.com/1/lists/2"
LANE = "http://127.0.0.1:9/cgi-bin/webhook/send?key=group"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "vidscribe.db") as opened:
        yield opened


def gateway(store: Store, work: RecordingWorkQueue, tmp_path: Path) -> httpx.AsyncClient:
    settings = Settings(api_tokens=[TOKEN], data_dir=tmp_path, media={"max_playlist_items": 5})
    app = create_app(settings, LocalStoreClient(store), work)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")


@pytest.mark.parametrize(
    ("spec", "numbers"),
    [("1-3", [1, 2, 3]), (" 2 , 4-5 ", [2, 4, 5]), ("3,1,3", [3, 1]), ("7", [7])],
)
def test_item_numbers(spec: str, numbers: list[int]) -> None:
    assert item_numbers(spec, limit=5) == numbers


@pytest.mark.parametrize("spec", ["", "0", "3-1", "a", "1-", "-2", "1;2", "1-6", "1-999999999"])
def test_item_numbers_refuses_what_it_cannot_mean(spec: str) -> None:
    with pytest.raises(ValueError, match="playlist_items"):
        item_numbers(spec, limit=5)


async def test_each_item_becomes_a_task_listed_in_order(store: Store, tmp_path: Path) -> None:
    work = RecordingWorkQueue()
    async with gateway(store, work, tmp_path) as client:
        first = await client.post(
            "/api/transcribe", json={"url": FEED, "options": {"playlist_items": "1-3"}}, headers=AUTH
        )
        again = await client.post(
            "/api/transcribe", json={"url": FEED, "options": {"playlist_items": "2-4"}}, headers=AUTH
        )
        plain = await client.post("/api/transcribe", json={"url": FEED}, headers=AUTH)
    assert first.status_code == again.status_code == plain.status_code == 202
    ids = first.json()["task_ids"]
    assert len(set(ids)) == 3 and first.json()["task_id"] == ids[0]
    tasks = [store.get_task(task_id) for task_id in ids]
    assert [t.options.playlist_item for t in tasks if t] == [1, 2, 3]
    assert len({t.options.series for t in tasks if t}) == 1
    assert again.json()["task_ids"][:2] == ids[1:]  # items 2 and 3 are still running: the same tasks
    assert plain.json()["task_ids"] == [plain.json()["task_id"]] and plain.json()["task_id"] not in ids
    assert work.dispatched == 3 + 1 + 1  # items 1-3, item 4, the plain link


@pytest.mark.parametrize("spec", ["1-6", "x"])
async def test_too_many_or_malformed_items_are_refused(store: Store, tmp_path: Path, spec: str) -> None:
    work = RecordingWorkQueue()
    async with gateway(store, work, tmp_path) as client:
        response = await client.post(
            "/api/transcribe", json={"url": FEED, "options": {"playlist_items": spec}}, headers=AUTH
        )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert work.dispatched == 0


async def test_an_items_block_waits_for_the_earlier_items(store: Store, tmp_path: Path) -> None:
    work = RecordingWorkQueue()
    async with gateway(store, work, tmp_path) as client:
        body = {"url": FEED, "options": {"playlist_items": "1-3", "webhook_url": None}}
        ids = (await client.post("/api/transcribe", json=body, headers=AUTH)).json()["task_ids"]
        other = (await client.post("/api/transcribe", json={"url": "https://v.example/x"}, headers=AUTH)).json()
    # Items 3 and 2 are ready first, and another video too; item 1 is still being transcribed.
    for task_id in (ids[2], ids[1], other["task_id"]):
        store.add_block(task_id, LANE, CONTENT_KEY, [("text", "markdown")])
    nxt = store.next_block(LANE)
    assert nxt is not None and nxt.task_id == other["task_id"]  # other groups' work is not held up
    store.mark_part_sent(nxt.block_id, 0)
    assert store.next_block(LANE) is None  # 2 and 3 wait for item 1

    store.fail_task(ids[0], "no_speech", "nothing was said")  # a failed item holds nothing up
    nxt = store.next_block(LANE)
    assert nxt is not None and nxt.task_id == ids[1]
    store.mark_part_sent(nxt.block_id, 0)
    assert store.next_block(LANE) is None  # 3 waits until 2 is finished, not only sent
    store.update_task(ids[1], status=TaskStatus.DONE)
    nxt = store.next_block(LANE)
    assert nxt is not None and nxt.task_id == ids[2]
