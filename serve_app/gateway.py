"""Gateway deployment: the Serve ingress, a thin shell around the app of `create_app`.

It never transcribes and never calls the LLM; every answer takes a couple of Store
calls, so it stays fast under any load. A full queue is a 429, never a hang.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from ray.serve.handle import DeploymentHandle

from actors.delivery.bot.intake import LinkOutcome
from actors.storage.client import HandleStoreClient
from serve_app.http.app import create_app
from serve_app.http.context import edge_of_app
from serve_app.settings import Settings


class RayWorkQueue:
    """Accepted work as Serve calls: a work token to the Transcriber pool, a notice to the LLMSender."""

    def __init__(self, transcriber: DeploymentHandle, sender: DeploymentHandle) -> None:
        self._transcriber = transcriber
        self._sender = sender

    def dispatch(self) -> None:
        # Fire and forget: the token's fate is tracked in the Store, not here.
        self._transcriber.process.remote()

    def announce(self, task_id: str) -> None:
        self._sender.notify_accepted.remote(task_id)


class Gateway:
    """The HTTP API; Serve asks `__serve_build_asgi_app__` for the app once the replica exists."""

    def __init__(
        self, settings: Settings, store: DeploymentHandle, transcriber: DeploymentHandle, sender: DeploymentHandle
    ) -> None:
        self._sender = sender
        self._app = create_app(
            settings, HandleStoreClient(store), RayWorkQueue(transcriber, sender), robot_status=self._robot_status
        )

    async def _robot_status(self) -> dict[str, str] | None:
        try:
            status: dict[str, str] | None = await asyncio.wait_for(self._sender.robot_status.remote(), 5)
        except Exception as error:  # health details must answer even when the LLMSender does not
            return {"state": "unknown", "reason": f"the LLMSender did not answer: {type(error).__name__}"}
        return status

    async def submit_chat(self, links: list[str], lane: str) -> list[LinkOutcome]:
        """Links a member sent the smart robot (called by the LLMSender, which holds its connection)."""
        return await edge_of_app(self._app).submitter.submit_chat(links, lane)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return self._app
