"""The re-dispatch sweep: every waiting task that nobody holds gets a work token again
(after a restart, a lost token or a dead worker). Runs for the app's lifetime."""

from __future__ import annotations

import asyncio
import logging

from actors.domain.task import PRE_LLM_STAGES
from actors.settings import RecoverySettings
from actors.storage.client import StoreClient
from serve_app.http.submit import WorkQueue

log = logging.getLogger(__name__)


async def sweep_once(store: StoreClient, work: WorkQueue, idle_s: float) -> int:
    """One work token per waiting, unheld task untouched for `idle_s`; returns how many."""
    stale = await store.stale_tasks(PRE_LLM_STAGES, idle_s)
    for _task in stale:
        work.dispatch()
    if stale:
        log.info("re-dispatched %d waiting tasks", len(stale))
    return len(stale)


async def redispatch_forever(store: StoreClient, work: WorkQueue, recovery: RecoverySettings) -> None:
    """Sweep at once (a restart left every waiting task without a token), then every interval."""
    idle_s = 0.0
    while True:
        try:
            await sweep_once(store, work, idle_s)
            idle_s = recovery.redispatch_after_s
        except Exception:
            log.warning("re-dispatch sweep failed; retrying", exc_info=True)
        await asyncio.sleep(recovery.sweep_interval_s)
