"""The typed Store client: the same operations as the Store, with the same signatures."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from actors.domain.task import TaskOptions, TaskStatus
from actors.storage.client import OPERATIONS, HandleStoreClient, LocalStoreClient, StoreClient, run_operation
from actors.storage.store import Store


def public_methods(cls: type) -> set[str]:
    return {name for name, value in vars_of(cls).items() if callable(value) and not name.startswith("_")}


def vars_of(cls: type) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass))
    return merged


def test_the_client_offers_every_store_operation() -> None:
    assert public_methods(Store) - {"close"} == OPERATIONS


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_operation_keeps_the_store_signature(operation: str) -> None:
    sync, client = getattr(Store, operation), getattr(StoreClient, operation)
    assert inspect.iscoroutinefunction(client)
    assert inspect.signature(client).parameters.keys() == inspect.signature(sync).parameters.keys()
    assert [p.kind for p in inspect.signature(client).parameters.values()] == [
        p.kind for p in inspect.signature(sync).parameters.values()
    ]
    assert get_type_hints(client) == get_type_hints(sync)


def test_unknown_operations_are_refused(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store, pytest.raises(AttributeError):
        run_operation(store, "close")


async def test_local_client_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        client = LocalStoreClient(store)
        task, created = await client.create_task("https://v.example/1", TaskOptions())
        assert created
        await client.update_task(task.task_id, status=TaskStatus.RESOLVING)
        got = await client.get_task(task.task_id)
        assert got is not None and got.status is TaskStatus.RESOLVING
        assert await client.ping()


async def test_handle_client_calls_the_deployment_method(tmp_path: Path) -> None:
    class FakeHandle:  # what a Serve DeploymentHandle offers: handle.call.remote(...) -> awaitable
        def __init__(self, store: Store) -> None:
            self.call = self
            self.store = store

        async def remote(self, operation: str, *args: Any, **kwargs: Any) -> Any:
            return run_operation(self.store, operation, *args, **kwargs)

    with Store(tmp_path / "s.db") as store:
        client = HandleStoreClient(FakeHandle(store))
        task, _ = await client.create_task("https://v.example/2", TaskOptions())
        assert (await client.get_task(task.task_id)) == store.get_task(task.task_id)
