"""Write a small store file with the running code's schema, and what it holds, as a fixture.

    python -m tests.support.make_store_fixture [OUT_DIR]   # default: tests/data

Writes `store_schema<N>.db` (N: this release's SCHEMA_VERSION) and `store_schema<N>.json`,
the tasks, cache layers, aliases and outbox blocks it was filled with. Run it once per
schema version, from the release that introduced it, and commit both files: the migration
test opens every such file with today's code and checks that nothing was lost.
`store_schema1.*` were written by the release at commit 3f36e4a (schema 1), `store_schema2.*`
by 4b0da11 (schema 2).

Uses only the Store's public operations, so it runs against any release's code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from actors.domain.outbox import CONTENT_KEY
from actors.domain.task import TaskOptions, TaskStatus
from actors.domain.video import Segment, Transcript, TranscriptSource, VideoInfo
from actors.storage.schema import SCHEMA_VERSION
from actors.storage.store import Store

LANE_A = "http://127.0.0.1:9/cgi-bin/webhook/send?key=fixture-group-a"
LANE_B = "http://127.0.0.1:9/cgi-bin/webhook/send?key=fixture-group-b"


def video(n: int) -> VideoInfo:
    return VideoInfo(url=f"https://site.test/v/{n}", platform="html5", video_id=f"page-{n}", title=f"第{n}集 (1)")


def transcript(text: str) -> Transcript:
    return Transcript(segments=[Segment(start=0.0, end=2.0, text=text)], language="zh", duration=2.0)


def parts(name: str, n: int) -> list[tuple[str, str]]:
    return [(f"【{name} {i}/{n}】第一集\n正文 {i}", "markdown") for i in range(1, n + 1)]


def fill(store: Store) -> None:
    """Tasks in every kind of state, with their cache layers, aliases and outbox blocks."""
    store.create_task("https://site.test/v/queued", TaskOptions())  # waiting for a Transcriber

    leased, _ = store.create_task("https://site.test/v/2", TaskOptions(language="zh"), client="ios")
    store.claim_task(leased.task_id, "transcriber-1", 60)
    store.update_task(leased.task_id, status=TaskStatus.TRANSCRIBING, video=video(2), progress=0.4)

    done, _ = store.create_task("https://b23.test/short-1", TaskOptions(), webhook=LANE_A)
    store.remember_alias("https://b23.test/short-1", "html5", "page-1")
    store.remember_alias("https://site.test/v/1", "html5", "page-1")
    for layer, value in (
        ("metadata", video(1)),
        ("transcript", transcript("大家好，这是第一集。")),
        ("proofread", "大家好，这是第一集。"),
        ("summary", "第一集的总结。"),
    ):
        store.cache_put("html5", "page-1", layer, value)
    sent = store.add_block(done.task_id, LANE_A, CONTENT_KEY, parts("校对", 2))
    for seq in range(2):
        store.mark_part_sent(sent, seq)
    store.update_task(
        done.task_id,
        status=TaskStatus.DONE,
        video=video(1),
        source=TranscriptSource.SUBTITLES,
        transcript=transcript("大家好，这是第一集。"),
        proofread="大家好，这是第一集。",
        summary="第一集的总结。",
        delivery={"state": "sent", "parts_total": 2, "parts_sent": 2},
        progress=1.0,
    )

    delivering, _ = store.create_task("https://site.test/v/3", TaskOptions(summary=False), webhook=LANE_A)
    store.cache_put("html5", "page-3", "metadata", video(3))
    store.cache_put("html5", "page-3", "transcript", transcript("第三集。"))
    store.remember_alias("https://site.test/v/3", "html5", "page-3")
    halfway = store.add_block(delivering.task_id, LANE_A, CONTENT_KEY, parts("校对", 3))
    store.mark_part_sent(halfway, 0)  # parts 2 and 3 are still to send
    store.update_task(
        delivering.task_id,
        status=TaskStatus.DELIVERING,
        video=video(3),
        source=TranscriptSource.ASR,
        transcript=transcript("第三集。"),
        proofread="第三集。",
        delivery={"state": "sending", "parts_total": 3, "parts_sent": 1},
        warnings=["chunk 1 kept unproofread"],
    )

    failed, _ = store.create_task("https://site.test/v/4", TaskOptions(), webhook=LANE_B)
    store.add_block(failed.task_id, LANE_B, "failed", [("【状态】失败: 下载出错", "text")])  # unsent notice
    store.fail_task(failed.task_id, "download_error", "HTTP 412 from the site")


def contents(store: Store) -> dict[str, Any]:
    """Everything `fill` put in the file, as JSON."""
    tasks = store.list_tasks(limit=1000)
    cache = [
        [platform, video_id, layer, store.cache_get(platform, video_id, layer)]
        for platform, video_id in (("html5", "page-1"), ("html5", "page-3"))
        for layer in ("metadata", "transcript", "proofread", "summary")
        if store.cache_get(platform, video_id, layer) is not None
    ]
    aliases = {
        url: store.cached_video(url)
        for url in ("https://b23.test/short-1", "https://site.test/v/1", "https://site.test/v/3")
    }
    return {
        "schema": SCHEMA_VERSION,
        "tasks": [{**task.model_dump(mode="json"), "webhook": task.webhook} for task in tasks],
        "cache": cache,
        "aliases": aliases,
        "blocks": [
            {**block.model_dump(mode="json"), "lane": block.lane}
            for task in tasks
            for block in store.task_blocks(task.task_id)
        ],
    }


def main(out_dir: Path) -> None:
    db = out_dir / f"store_schema{SCHEMA_VERSION}.db"
    db.unlink(missing_ok=True)
    with Store(db) as store:
        fill(store)
        manifest = contents(store)
    # Closing checkpointed the WAL: the .db alone is the whole store.
    (out_dir / f"store_schema{SCHEMA_VERSION}.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(f"wrote {db} ({db.stat().st_size} bytes) and its .json")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "data")
