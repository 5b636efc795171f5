"""Group commit: concurrent submissions share Store round trips, each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from serve_app.http.group_commit import GroupCommit


class SlowWriter:
    """A batched write that takes a while, recording the batches it was given."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on

    async def __call__(self, batch: list[str]) -> list[str]:
        self.batches.append(batch)
        await asyncio.sleep(0.05)
        if self.fail_on in batch:
            raise RuntimeError("disk full")
        return [item.upper() for item in batch]


async def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    first = asyncio.create_task(commit("a"))
    await asyncio.sleep(0.01)  # "a" is being written
    rest = [asyncio.create_task(commit(f"b{i}")) for i in range(50)]
    assert await first == "A"
    assert await asyncio.gather(*rest) == [f"B{i}" for i in range(50)]
    assert [len(batch) for batch in writer.batches] == [1, 50]


async def test_an_idle_caller_is_written_at_once() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    for item in ("x", "y"):
        assert await commit(item) == item.upper()
    assert writer.batches == [["x"], ["y"]]


async def test_batches_are_bounded() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer, max_batch=4)
    results = await asyncio.gather(*(commit(str(i)) for i in range(10)))
    assert results == [str(i) for i in range(10)]
    assert [len(batch) for batch in writer.batches] == [4, 4, 2]


async def test_a_failed_write_fails_only_its_own_batch() -> None:
    writer = SlowWriter(fail_on="bad")
    commit: GroupCommit[str, str] = GroupCommit(writer)
    doomed = [asyncio.create_task(commit(item)) for item in ("bad", "unlucky")]
    await asyncio.sleep(0.01)
    later = asyncio.create_task(commit("fine"))
    for task in doomed:
        with pytest.raises(RuntimeError, match="disk full"):
            await task
    assert await later == "FINE"


async def test_a_caller_that_gives_up_does_not_cancel_the_others() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    leaving, staying = asyncio.create_task(commit("gone")), asyncio.create_task(commit("kept"))
    await asyncio.sleep(0.01)
    leaving.cancel()
    assert await staying == "KEPT"
    assert writer.batches == [["gone", "kept"]]  # what was submitted is still written
