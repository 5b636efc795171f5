"""App builder: wires the deployments into one Serve application.

`serve run ray_config.yaml` imports `serve_app.app:build_app`; `vidscribe serve` and the
tests call `compose_app`, which also takes per-deployment options. Settings come from
the environment of the process that builds the app and travel to every replica as a
constructor argument.
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application
from ray.serve.deployment import Deployment

from actors.llm_sender import LLMSender
from actors.store import StoreDeployment
from actors.transcriber import Transcriber
from serve_app.gateway import Gateway
from serve_app.settings import Settings

APP_NAME = "vidscribe"


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder: `args` (from ray_config.yaml) override settings fields."""
    # Exactly one parameter: Serve refuses builders with more (`serve run`/`deploy`, KubeRay).
    return compose_app(args)


def compose_app(
    args: dict[str, Any] | None = None, deployment_options: dict[str, dict[str, Any]] | None = None
) -> Application:
    """Build the application; `args` override settings fields and `deployment_options`
    (by deployment name) override decorator options."""
    settings = Settings(**(args or {}))
    overrides = deployment_options or {}

    def configured(deployment: Any) -> Deployment:  # the decorators return Deployments
        return deployment.options(**overrides.get(deployment.name, {}))

    store = configured(StoreDeployment).bind(settings)
    sender = configured(LLMSender).bind(settings, store)
    transcriber = configured(Transcriber).bind(settings, store, sender)
    return configured(Gateway).bind(settings, store, transcriber, sender)
