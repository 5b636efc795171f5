"""Store files from earlier releases open with today's code, whole; newer ones are refused.

`tests/data/store_schema<N>.db` was written by the release whose schema was N (made by
tests/support/make_store_fixture.py), and `store_schema<N>.json` is what it holds.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from actors.storage import database
from actors.storage.database import NewerStore
from actors.storage.schema import MIGRATIONS, SCHEMA_VERSION
from actors.storage.store import Store
from tests.support import make_store_fixture

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = sorted(DATA.glob("store_schema*.db"))
TABLES = ("tasks", "cache", "aliases", "outbox_blocks", "outbox_parts")


def copy_of(fixture: Path, tmp_path: Path) -> Path:
    """A scratch copy: opening a store migrates it in place."""
    path = tmp_path / "vidscribe.db"
    shutil.copyfile(fixture, path)
    return path


def row_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as db:
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}


def kept(expected: Any, actual: Any) -> Any:
    """`actual` cut down to the shape of `expected`: fields added by later releases are left out."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {name: kept(value, actual.get(name)) for name, value in expected.items()}
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [kept(e, a) for e, a in zip(expected, actual, strict=True)]
    return actual


def pragma(path: Path, name: str) -> Any:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def test_there_is_a_fixture_for_schema_1() -> None:
    assert DATA / "store_schema1.db" in FIXTURES
    assert all(fixture.with_suffix(".json").is_file() for fixture in FIXTURES)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_an_older_file_opens_with_every_row_intact(fixture: Path, tmp_path: Path) -> None:
    path = copy_of(fixture, tmp_path)
    manifest = json.loads(fixture.with_suffix(".json").read_text(encoding="utf-8"))
    before = row_counts(path)
    assert pragma(path, "user_version") == manifest["schema"] <= SCHEMA_VERSION

    with Store(path) as store:
        for expected in manifest["tasks"]:
            task = store.get_task(expected["task_id"])
            assert task is not None, expected["task_id"]
            dumped = {**task.model_dump(mode="json"), "webhook": task.webhook}
            assert kept(expected, dumped) == expected
        for platform, video_id, layer, value in manifest["cache"]:
            assert store.cache_get(platform, video_id, layer) == value, (video_id, layer)
        for url, video in manifest["aliases"].items():
            assert store.cached_video(url) == (tuple(video) if video else None), url
        blocks = [
            {**block.model_dump(mode="json"), "lane": block.lane}
            for task in manifest["tasks"]
            for block in store.task_blocks(task["task_id"])
        ]
        expected_blocks = sorted(manifest["blocks"], key=lambda b: b["block_id"])
        assert kept(expected_blocks, sorted(blocks, key=lambda b: b["block_id"])) == expected_blocks
        # A block interrupted halfway goes out next on its lane, from its first unsent part.
        halfway = [
            block
            for block in manifest["blocks"]
            if block["parts"][0]["sent_at"] is not None and block["parts"][-1]["sent_at"] is None
        ]
        assert halfway
        for expected_block in halfway:
            upcoming = store.next_block(expected_block["lane"])
            assert upcoming is not None and upcoming.block_id == expected_block["block_id"]
            unsent = [part["seq"] for part in expected_block["parts"] if part["sent_at"] is None]
            assert [part.seq for part in upcoming.parts] == unsent

    assert row_counts(path) == before
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert pragma(path, "auto_vacuum") == database.INCREMENTAL  # the one-time VACUUM ran
    assert pragma(path, "integrity_check") == "ok"
    with closing(sqlite3.connect(path)) as db:  # every cache layer has its size and a last use
        assert (
            db.execute(
                "SELECT COUNT(*) FROM cache c JOIN cache_usage u USING (platform, video_id, layer)"
                " WHERE u.bytes = length(CAST(c.value AS BLOB))"
            ).fetchone()[0]
            == before["cache"]
        )


def test_the_schema_1_fixture_has_what_the_migration_must_keep() -> None:
    manifest = json.loads((DATA / "store_schema1.json").read_text(encoding="utf-8"))
    statuses = {task["status"] for task in manifest["tasks"]}
    assert {"queued", "transcribing", "delivering", "done", "failed"} <= statuses
    assert any(part["sent_at"] is None for block in manifest["blocks"] for part in block["parts"])
    assert {layer for _, _, layer, _ in manifest["cache"]} == {"metadata", "transcript", "proofread", "summary"}
    assert manifest["aliases"]


def test_a_failing_migration_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = copy_of(DATA / "store_schema1.db", tmp_path)
    before = row_counts(path)
    broken = MIGRATIONS[2] + "INSERT INTO no_such_table VALUES (1);\n"  # fails after the real steps
    monkeypatch.setattr(database, "MIGRATIONS", {**MIGRATIONS, 2: broken})
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        Store(path)
    assert pragma(path, "user_version") == 1
    with closing(sqlite3.connect(path)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "cache_usage" not in tables
    assert row_counts(path) == before
    monkeypatch.undo()
    with Store(path) as store:  # and the real migration still works on it afterwards
        assert store.count_unfinished() == 3


def test_a_newer_file_is_refused_with_a_message_and_left_alone(tmp_path: Path) -> None:
    path = copy_of(DATA / "store_schema1.db", tmp_path)
    Store(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = row_counts(path)
    with pytest.raises(NewerStore, match=rf"schema {SCHEMA_VERSION + 1}, written by a newer vidscribe") as refused:
        Store(path)
    assert "Upgrade vidscribe" in refused.value.message
    assert refused.value.code == "store_schema_too_new"
    assert pragma(path, "user_version") == SCHEMA_VERSION + 1
    assert row_counts(path) == before


def test_a_new_file_is_incremental_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store(path).close()
    assert pragma(path, "auto_vacuum") == database.INCREMENTAL
    assert pragma(path, "user_version") == SCHEMA_VERSION


def test_the_fixture_script_writes_the_current_schema(tmp_path: Path) -> None:
    # The next schema's fixture is made with this script: it must keep working.
    make_store_fixture.main(tmp_path)
    written = tmp_path / f"store_schema{SCHEMA_VERSION}.db"
    manifest = json.loads(written.with_suffix(".json").read_text(encoding="utf-8"))
    assert manifest["schema"] == SCHEMA_VERSION
    assert len(manifest["tasks"]) == 5
    with Store(written) as store:
        assert {task.task_id for task in store.list_tasks()} == {task["task_id"] for task in manifest["tasks"]}
