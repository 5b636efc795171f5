"""Log lines that carry the task id (plain module, no Ray imports).

Code that works on one task wraps that work in `task_context(task_id)` (or calls
`bind(task_id)` at the top of the asyncio task that does it); once
`install()` has run in the process, every log record made inside it (in this
coroutine, the asyncio tasks it starts and the threads of `asyncio.to_thread`) gets
a `vidscribe_task_id` attribute. Serve's JSON log encoding (`logging_config` in
ray_config.yaml) writes such attributes as fields, so an operator can follow one task
through every replica's log: `jq 'select(.vidscribe_task_id == "...")'`. (Not plain
`task_id`: that is Ray's own task id, which Serve strips from its log records.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELD = "vidscribe_task_id"
SERVE_LOGGER = "ray.serve"  # the logger Serve writes to the replica's log file
OUR_LOGGERS = ("actors", "serve_app")

_current: ContextVar[str | None] = ContextVar("vidscribe_task_id", default=None)


def current_task() -> str | None:
    """The task id of the surrounding `task_context`, if any."""
    return _current.get()


def bind(task_id: str) -> None:
    """Tag the log records of the rest of the current asyncio task (a Serve request) with `task_id`."""
    _current.set(task_id)


@contextmanager
def task_context(task_id: str) -> Iterator[None]:
    """Tag the log records made inside the block with `task_id`."""
    token = _current.set(task_id)
    try:
        yield
    finally:
        _current.reset(token)


def install(*, to_serve_logs: bool = True) -> None:
    """Add `vidscribe_task_id` to log records made inside a task context (idempotent).

    With `to_serve_logs` (inside a Serve replica) our loggers also write through
    Serve's handlers: the replica's log file, in Serve's encoding, with the
    deployment, replica and request id beside the task id. Otherwise they would only
    reach the worker's stderr, outside Serve's structured logs.
    """
    previous = logging.getLogRecordFactory()
    if not getattr(previous, "vidscribe_task_ids", False):

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            task_id = _current.get()
            if task_id is not None and not hasattr(record, FIELD):
                setattr(record, FIELD, task_id)
            return record

        factory.vidscribe_task_ids = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
    serve_logger = logging.getLogger(SERVE_LOGGER)
    if to_serve_logs and serve_logger.handlers:
        for name in OUR_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers = list(serve_logger.handlers)
            logger.setLevel(serve_logger.level)
            logger.propagate = False  # Serve's handlers already include stderr: no line twice
