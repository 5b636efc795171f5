"""The Serve config (`ray_config.yaml`): the one place the deployments' options are written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# Package data, so an installed wheel has it; the checkout's top-level ray_config.yaml
# (what `serve run ray_config.yaml` and the k8s manifest use) is a link to this file.
DEFAULT_CONFIG = Path(__file__).resolve().parent / "ray_config.yaml"
APP_NAME = "vidscribe"


def load_app_config(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The vidscribe application's `args` and per-deployment options from a Serve config."""
    config = yaml.safe_load(path.read_text())
    app = next(a for a in config["applications"] if a["name"] == APP_NAME)
    # The app's logging_config applies to every deployment without its own, as in `serve run`.
    shared = {"logging_config": app["logging_config"]} if "logging_config" in app else {}
    options = {d["name"]: shared | {k: v for k, v in d.items() if k != "name"} for d in app.get("deployments", [])}
    return app.get("args") or {}, options
