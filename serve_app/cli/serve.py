"""`vidscribe serve`: run the app on local Ray (or a reachable cluster) in the foreground."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
from pathlib import Path
from typing import Any

from serve_app.serve_config import DEFAULT_CONFIG, load_app_config
from serve_app.settings import Settings

log = logging.getLogger(__name__)

HEAD_RESOURCE = "vidscribe_head"  # the singletons (Store, LLMSender) are pinned to it on a cluster
# Ray starts its workers at nice 15 so that its own daemons always win the CPU. Our
# workers are the service (ASR above all): at 15, every other process on the machine
# slows transcription down (~10 % on a 2-core machine). Read by the raylet at start.
WORKER_NICENESS = {"RAY_worker_niceness": "0"}


def use_worker_niceness() -> None:
    """Put WORKER_NICENESS in this process's environment (unless set) before it starts Ray."""
    for name, value in WORKER_NICENESS.items():
        os.environ.setdefault(name, value)


def add_serve_command(subparsers: Any) -> None:
    """Register `vidscribe serve` on the CLI's subparsers."""
    parser = subparsers.add_parser("serve", help="run the service on local Ray (or RAY_ADDRESS) in the foreground")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Serve config (ray_config.yaml)")
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    parser.set_defaults(handler=lambda args: serve_forever(args.host, args.port, args.config, args.num_cpus))


def ensure_local_token(data_dir: Path) -> Path:
    """Create (once) a random API token readable only by this user, and use it."""
    token_file = data_dir / "api_token"
    if not token_file.exists():
        token_file.touch(mode=0o600)
        token_file.write_text(secrets.token_urlsafe(32))
    os.environ["VIDSCRIBE_API_TOKENS"] = token_file.read_text().strip()  # read by build_app's Settings()
    return token_file


def start_ray(num_cpus: int | None) -> None:
    """Use RAY_ADDRESS if set ("local" forces a new instance), else join a running
    cluster (`ray start`), else start a local instance in this process."""
    import ray

    address = os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        ray.init(address=address, logging_level=logging.WARNING)
        return
    if not address:
        try:
            ray.init(address="auto", logging_level=logging.WARNING)
            log.info("joined the running Ray cluster")
            return
        except ConnectionError:
            pass
    os.environ.pop("RAY_ADDRESS", None)
    use_worker_niceness()
    ray.init(num_cpus=num_cpus, resources={HEAD_RESOURCE: 1}, logging_level=logging.WARNING)
    log.info("started a local Ray instance")


def serve_forever(host: str, port: int, config: Path, num_cpus: int | None = None) -> int:
    """Deploy the app and block until SIGINT / SIGTERM, then shut down cleanly."""
    from ray import serve

    from serve_app.app import APP_NAME, compose_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.api_tokens:
        token_file = ensure_local_token(settings.data_dir)
        print(f"VIDSCRIBE_API_TOKENS is not set: using the token stored in {token_file}", flush=True)
    if not settings.llm.enabled:
        log.warning("no LLM configured: transcripts are delivered raw, without proofreading or summary")
    if settings.wecom.webhook_url is None:
        log.warning("no WeCom webhook configured: results are kept in the store and not delivered")
    args, deployment_options = load_app_config(config)
    start_ray(num_cpus)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    serve.start(http_options={"host": host, "port": port})
    serve.run(compose_app(args, deployment_options), name=APP_NAME, route_prefix="/", blocking=False)
    print(f"vidscribe is serving on http://{host}:{port} (Ctrl-C to stop)", flush=True)
    stop.wait()
    print("shutting down ...", flush=True)
    serve.shutdown()
    import ray

    ray.shutdown()
    return 0
