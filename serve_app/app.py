"""App builder: wires the deployments into one Serve application; the only module that
imports the deployment classes.

`serve run ray_config.yaml` imports `serve_app.app:build_app`; `vidscribe serve` and the
tests call `compose_app`. Each deployment's options (replicas, autoscaling, resources,
max_ongoing_requests) come from the Serve config, applied here as
`serve.deployment(cls, name=..., **options)`; the classes carry none. Settings come from
the environment of the process that builds the app and travel to every replica as a
constructor argument.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application
from ray.serve.deployment import Deployment

from actors.llm_sender import LLMSender
from actors.store import StoreDeployment
from actors.transcriber import Transcriber
from serve_app.gateway import Gateway
from serve_app.serve_config import APP_NAME, DEFAULT_CONFIG, load_app_config
from serve_app.settings import Settings

__all__ = ["APP_NAME", "DEPLOYMENTS", "build_app", "compose_app"]

# Serve deployment name -> class; the names are the ones ray_config.yaml configures.
DEPLOYMENTS: dict[str, type] = {
    "Gateway": serve.ingress()(Gateway),
    "Store": StoreDeployment,
    "LLMSender": LLMSender,
    "Transcriber": Transcriber,
}


def build_app(args: dict[str, Any]) -> Application:
    """Serve's application builder: `args` (from ray_config.yaml) override settings fields."""
    # Exactly one parameter: Serve refuses builders with more (`serve run`/`deploy`, KubeRay).
    return compose_app(args)


def compose_app(
    args: dict[str, Any] | None = None, deployment_options: dict[str, dict[str, Any]] | None = None
) -> Application:
    """Build the application; `args` override settings fields and `deployment_options` (by
    deployment name) are the deployments' options, by default those of the packaged config."""
    settings = Settings(**(args or {}))
    options = load_app_config(DEFAULT_CONFIG)[1] if deployment_options is None else deployment_options

    def deployment(name: str) -> Deployment:
        made: Deployment = serve.deployment(DEPLOYMENTS[name], name=name, **options.get(name, {}))  # type: ignore[assignment]
        return made

    store = deployment("Store").bind(settings)
    sender = deployment("LLMSender").bind(settings, store)
    transcriber = deployment("Transcriber").bind(settings, store, sender)
    return deployment("Gateway").bind(settings, store, transcriber, sender)
