"""vidscribe's metrics, recorded with `ray.util.metrics` in the deployments' processes.

Every Ray node serves the metrics of its processes in Prometheus text format on its
metrics export port, each name prefixed `ray_` by Ray (`vidscribe_tasks_completed`
is scraped as `ray_vidscribe_tasks_completed_total`). docs/operations.md says where to
scrape them and what to chart. Ray-side module: the deployment shells call it; the
plain modules report through optional callbacks that the shells wire to it.

Histogram sums are approximate: Ray 2.60 exports each observation's bucket midpoint,
so quantiles come from the buckets (`histogram_quantile`), not from `_sum / _count`.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ray.util.metrics import Counter, Gauge, Histogram

from actors.delivery.bot.connection import BotState
from actors.delivery.bot.sender import chat_of
from actors.domain.errors import DeliveryError
from actors.domain.task import TaskRecord, TaskStatus, TokenUsage
from actors.storage.retention import PruneReport

STAGE_BUCKETS_S = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200]
RTF_BUCKETS = [0.02, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5]
LLM_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300]
NO_SOURCE = "none"  # the source tag of a task that failed before it had a transcript


@dataclass(frozen=True)
class _Instruments:
    submitted: Counter
    completed: Counter
    failed: Counter
    queue_depth: Gauge
    stage_seconds: Histogram
    asr_rtf: Histogram
    wecom_messages: Counter
    wecom_blocks_parked: Counter
    llm_seconds: Histogram
    llm_tokens: Counter
    store_pruned: Counter
    wecom_bot_state: Gauge


def client_tag(task: TaskRecord) -> str:
    """The client a task belongs to, as a metric tag (`default`: the plain API tokens; `wecom-bot`:
    any chat of the smart robot, one tag for them all)."""
    if task.client is not None and chat_of(task.client) is not None:
        return "wecom-bot"
    return task.client or "default"


@functools.cache
def _instruments() -> _Instruments:
    # Made on first use, inside a Ray worker: importing this module (the app builder
    # does) must not need a Ray connection.
    return _Instruments(
        submitted=Counter(
            "vidscribe_tasks_submitted",
            "New tasks accepted, by client and whether they were cached already.",
            tag_keys=("cached", "client"),
        ),
        completed=Counter(
            "vidscribe_tasks_completed", "Tasks done, by transcript source and client.", tag_keys=("source", "client")
        ),
        failed=Counter(
            "vidscribe_tasks_failed",
            "Tasks failed, by transcript source (none: failed before one), error code and client.",
            tag_keys=("source", "code", "client"),
        ),
        queue_depth=Gauge("vidscribe_queue_depth", "Unfinished tasks (queued or in progress)."),
        stage_seconds=Histogram(
            "vidscribe_stage_seconds",
            "Time a task spent in a pipeline stage (queued, resolving, ... delivering).",
            boundaries=STAGE_BUCKETS_S,
            tag_keys=("stage",),
        ),
        asr_rtf=Histogram(
            "vidscribe_asr_real_time_factor",
            "Speech recognition time divided by the audio's duration (below 1: faster than real time).",
            boundaries=RTF_BUCKETS,
            tag_keys=("device",),
        ),
        wecom_messages=Counter(
            "vidscribe_wecom_messages",
            "WeCom send attempts by result: sent, retried (busy, rate limited, network), refused.",
            tag_keys=("result",),
        ),
        wecom_blocks_parked=Counter(
            "vidscribe_wecom_blocks_parked",
            "Blocks given up on (WeCom refused them, or failed for wecom.park_after_s), by WeCom errcode.",
            tag_keys=("errcode",),
        ),
        llm_seconds=Histogram(
            "vidscribe_llm_call_seconds",
            "Latency of one LLM chat completion, by model and outcome (ok, error).",
            boundaries=LLM_BUCKETS_S,
            tag_keys=("model", "outcome"),
        ),
        llm_tokens=Counter(
            "vidscribe_llm_tokens",
            "Tokens the LLM steps cost as the server counted them, by model, client and kind (prompt, completion).",
            tag_keys=("model", "client", "kind"),
        ),
        store_pruned=Counter(
            "vidscribe_store_pruned",
            "What retention deleted from the store: tasks, outbox_blocks, notice_parts, cache_layers and cache_bytes.",
            tag_keys=("kind",),
        ),
        wecom_bot_state=Gauge(
            "vidscribe_wecom_bot_state",
            "The smart robot's long connection: 1 for its current state (connecting, online, offline, replaced), "
            "0 for the others.",
            tag_keys=("state",),
        ),
    )


class TaskLifecycle:
    """Task counters, queue depth and stage durations, fed by the Store on every status change.

    The Store is the one place every task's status passes through, so transitions are
    seen exactly once. Stage start times live in memory: after a Store restart the
    stage a task was in is not timed, everything after it is.
    """

    def __init__(self, count_unfinished: Callable[[], int]) -> None:
        self._count_unfinished = count_unfinished
        self._stages: dict[str, tuple[TaskStatus, float]] = {}  # task id -> (stage, entered at)
        self._lock = threading.Lock()  # Serve runs the Store's sync methods in threads
        _instruments().queue_depth.set(count_unfinished())

    def created(self, task: TaskRecord) -> None:
        """A new task was accepted."""
        with self._lock:
            self._stages[task.task_id] = (task.status, time.monotonic())
        _instruments().submitted.inc(tags={"cached": "true" if task.cached else "false", "client": client_tag(task)})
        self._update_depth()

    def status_set(self, task: TaskRecord) -> None:
        """The task's status was written (it may be the same as before)."""
        now = time.monotonic()
        with self._lock:
            previous = self._stages.get(task.task_id)
            if previous is not None and previous[0] is task.status:
                return  # still the same stage (a retried step): its clock keeps running
            if task.status.finished:
                self._stages.pop(task.task_id, None)
            else:
                self._stages[task.task_id] = (task.status, now)
        metrics = _instruments()
        if previous is not None:
            metrics.stage_seconds.observe(now - previous[1], tags={"stage": previous[0].value})
        source = task.source.value if task.source else NO_SOURCE
        if task.status is TaskStatus.DONE:
            metrics.completed.inc(tags={"source": source, "client": client_tag(task)})
        elif task.status is TaskStatus.FAILED:
            code = task.error.code if task.error else "unknown"
            metrics.failed.inc(tags={"source": source, "code": code, "client": client_tag(task)})
        if task.status.finished:
            self._update_depth()

    def _update_depth(self) -> None:
        _instruments().queue_depth.set(self._count_unfinished())


def asr_observer(device: str) -> Callable[[float, float], None]:
    """A TranscribeJob `on_asr(audio_s, wall_s)` callback recording the real-time factor."""

    def observe(audio_s: float, wall_s: float) -> None:
        if audio_s > 0:
            _instruments().asr_rtf.observe(wall_s / audio_s, tags={"device": device})

    return observe


def wecom_event(result: str) -> None:
    """A WeComClient `on_event` callback: one send attempt's result."""
    _instruments().wecom_messages.inc(tags={"result": result})


def block_parked(error: DeliveryError) -> None:
    """A Mailbox `on_block_parked` callback: a block the group will not get unless redelivered."""
    _instruments().wecom_blocks_parked.inc(tags={"errcode": str(error.errcode)})


def llm_call(model: str, seconds: float, ok: bool) -> None:
    """An LLMClient `on_call` callback: one chat completion's latency."""
    _instruments().llm_seconds.observe(seconds, tags={"model": model, "outcome": "ok" if ok else "error"})


def llm_tokens(task: TaskRecord, usage: TokenUsage) -> None:
    """A Mailbox `on_llm_usage` callback: the tokens one LLM step of `task` cost."""
    counter = _instruments().llm_tokens
    tags = {"model": usage.model, "client": client_tag(task)}
    counter.inc(usage.prompt_tokens, tags={**tags, "kind": "prompt"})
    counter.inc(usage.completion_tokens, tags={**tags, "kind": "completion"})


def store_pruned(batch: PruneReport) -> None:
    """A Pruner `on_batch` callback: what one retention batch deleted."""
    counter = _instruments().store_pruned
    for kind, count in batch.deleted().items():
        if count:
            counter.inc(count, tags={"kind": kind})


def wecom_bot_state(state: BotState, reason: str) -> None:
    """A BotConnection `on_state` callback: the connection's state as a one-hot gauge."""
    gauge = _instruments().wecom_bot_state
    for each in BotState:
        gauge.set(1 if each is state else 0, tags={"state": each.value})
