"""The local parts every service benchmark runs against: the video site, the fake LLM,
the WeCom receiver, a data dir with the bundled model, and (once asked) a local Ray
instance with Serve listening on a free port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.speech.bundled_model import ensure_default_model
from serve_app.cli.serve import HEAD_RESOURCE, use_worker_niceness
from tests.support.fake_llm import FakeLLM
from tests.support.service import free_port
from tests.support.video_site import VideoSite
from tests.support.wecom_receiver import WeComReceiver


class LocalStack:
    """Start it, `start_ray()` before deploying, `close()` at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site, self.llm, self.wecom = VideoSite().start(), FakeLLM().start(), WeComReceiver().start()
        self.wecom.window_s = 1.0  # WeCom's 20-per-window rule, with a window that does not dominate
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.data_dir = root / "data"
        ensure_default_model(self.data_dir)  # every Transcriber replica loads it

    def start_ray(self, num_cpus: int, **init_options: Any) -> None:
        """A local Ray instance with the head resource, and Serve on this stack's port (once)."""
        import ray
        from ray import serve

        if ray.is_initialized():
            return
        use_worker_niceness()  # as `vidscribe serve` starts Ray
        ray.init(
            num_cpus=num_cpus,
            resources={HEAD_RESOURCE: 1},
            include_dashboard=False,
            logging_level="ERROR",
            **init_options,
        )
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            from ray import serve

            serve.shutdown()
            ray.shutdown()
        self.site.close()
        self.llm.stop()
        self.wecom.stop()
