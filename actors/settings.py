"""The settings the work reads: each stage's section (beside its code) and the few that
several stages share, composed into `PipelineSettings`. `serve_app.settings.Settings`
adds the HTTP edge's own settings and reads them all from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from actors.delivery.bot.settings import WeComBotSettings
from actors.delivery.settings import NoticeSettings, SenderSettings, WeComSettings
from actors.llm.settings import LLMSettings
from actors.media.settings import MediaSettings
from actors.speech.settings import AsrSettings
from actors.storage.settings import RetentionSettings


class RecoverySettings(BaseModel):
    """How soon a task held by a dead Transcriber (crash, lost node) is dispatched again."""

    lease_s: float = Field(
        60,
        description="Seconds a Transcriber's claim on its task lasts; renewed every third of it while it works, "
        "so a dead Transcriber's task is free again within this long.",
    )
    redispatch_after_s: float = Field(
        120,
        description="Seconds a waiting task may go unheld and untouched before the Gateway dispatches it again.",
    )
    sweep_interval_s: float = Field(
        15, description="Seconds between the Gateway's sweeps for such tasks (the first runs at start-up)."
    )


class PipelineSettings(BaseModel):
    """Everything the deployments and their work modules read."""

    data_dir: Path = Field(
        Path("~/.local/share/vidscribe"),
        description="Directory of the SQLite store, the assembled bundled model, temporary media and the "
        "generated API token; ~ is expanded.",
    )
    allow_private_urls: bool = Field(
        False,
        description="Let video links (and the connections yt-dlp makes for them) reach loopback/private hosts; "
        "local testing only.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL of the view links sent to the group (/view/<task id> is appended).",
    )

    def view_url(self, task_id: str) -> str:
        """The task's view page at the public URL (the links sent to groups and chats)."""
        return f"{self.public_url.rstrip('/')}/view/{task_id}"

    media: MediaSettings = Field(default_factory=MediaSettings)
    asr: AsrSettings = Field(default_factory=AsrSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    wecom: WeComSettings = Field(default_factory=WeComSettings)
    wecom_bot: WeComBotSettings = Field(default_factory=WeComBotSettings)
    sender: SenderSettings = Field(default_factory=SenderSettings)
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    notices: NoticeSettings = Field(default_factory=NoticeSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    def operator_webhooks(self) -> frozenset[str]:
        """The webhooks the operator configured. Operator configuration is trusted: these are
        used as given, private hosts included; only a request's own webhook is SSRF-checked."""
        configured = self.wecom.webhook_url
        return frozenset([configured.get_secret_value()] if configured is not None else [])

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()
